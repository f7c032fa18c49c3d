"""A file that already lies on the analysis grid is read, not warped, and gives the warp's numbers exactly:
inside, at its edges, beyond them, and with nodata; a file the read could get wrong is still warped."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.vrt import WarpedVRT

from pipeline.grid import Grid
from pipeline.readers.rasters import _offset_on_grid, read_reflectance, warp_float, warp_to_grid

_ORIGIN, _RES = (500000.0, 1530000.0), 3.0


def _file(path, *, nodata=0, mask=False):
    rng = np.random.default_rng(4)
    data = rng.integers(1, 5000, (4, 60, 80)).astype(np.uint16)
    data[:, 10:14, 20:30] = nodata if nodata is not None else 0  # a patch of no data
    with rasterio.open(path, "w", driver="GTiff", width=80, height=60, count=4, dtype="uint16", crs="EPSG:32630",
                       transform=from_origin(*_ORIGIN, _RES, _RES), nodata=nodata) as dst:
        dst.write(data)
        if mask:
            dst.write_mask(np.where(data[0] > 2500, 255, 0).astype(np.uint8))
    return path


def _warped(src, grid, **kwargs):
    with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                   resampling=Resampling.bilinear, **kwargs) as vrt:
        return vrt.read()


@pytest.mark.parametrize("cols, rows, width, height", [(5, 7, 40, 30), (-6, -4, 40, 30), (70, 50, 40, 30), (90, 0, 5, 5)])
def test_a_file_on_the_grid_reads_as_the_warp_gives_it(tmp_path, cols, rows, width, height):
    grid = Grid("EPSG:32630", from_origin(_ORIGIN[0] + cols * _RES, _ORIGIN[1] - rows * _RES, _RES, _RES), width, height)
    with rasterio.open(_file(tmp_path / "scene.tif")) as src:
        assert _offset_on_grid(src, grid) == (rows, cols)
        np.testing.assert_array_equal(warp_float(src, grid), _warped(src, grid, src_nodata=0, nodata=np.nan, dtype="float64"))
        np.testing.assert_array_equal(warp_to_grid(src, grid, Resampling.bilinear, 0), _warped(src, grid, src_nodata=0, nodata=0))


def test_a_file_off_the_grid_or_with_its_own_mask_is_warped(tmp_path):
    half = Grid("EPSG:32630", from_origin(_ORIGIN[0] + 1.5, _ORIGIN[1], _RES, _RES), 20, 20)  # half a pixel off
    coarser = Grid("EPSG:32630", from_origin(*_ORIGIN, 2 * _RES, 2 * _RES), 20, 20)
    other_crs = Grid("EPSG:32631", from_origin(*_ORIGIN, _RES, _RES), 20, 20)
    with rasterio.open(_file(tmp_path / "scene.tif")) as src:
        assert [_offset_on_grid(src, g) for g in (half, coarser, other_crs)] == [None, None, None]
    on = Grid("EPSG:32630", from_origin(*_ORIGIN, _RES, _RES), 20, 20)
    with rasterio.open(_file(tmp_path / "masked.tif", nodata=None, mask=True)) as src:
        assert _offset_on_grid(src, on) is None  # the warper honours the internal mask; a plain read would not



def _flipped(north, path, *, rows: bool):
    """A copy of ``north`` stored south-up (``rows``: a positive y pixel size) or east-to-west (a negative x pixel
    size): the same ground, the same values, in the other order."""
    with rasterio.open(north) as src:
        profile, data, t = src.profile, src.read(), src.transform
    w, h = profile["width"], profile["height"]
    profile["transform"] = (Affine(t.a, 0.0, t.c, 0.0, -t.e, t.f + t.e * h) if rows else
                            Affine(-t.a, 0.0, t.c + t.a * w, 0.0, t.e, t.f))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data[:, ::-1, :] if rows else data[:, :, ::-1])
    return path


@pytest.mark.parametrize("rows", [True, False], ids=["south-up", "east-to-west"])
@pytest.mark.parametrize("dx, dy", [(0.0, 0.0), (1.5, -1.0)])  # on the north-up file's pixels, and between them
def test_a_flipped_copy_gives_the_north_up_files_pixels_on_the_grid(tmp_path, dx, dy, rows):
    """Found by an outside audit: a south-up file's bounds had the bottom above the top, so it overlapped no AOI;
    warped as stored, it came out blurred where the north-up file is read exactly."""
    from pipeline.readers.rasters import check_overlap, file_bounds, native_grid

    north = _file(tmp_path / "north.tif")
    flipped = _flipped(north, tmp_path / "flipped.tif", rows=rows)
    grid = Grid("EPSG:32630", from_origin(_ORIGIN[0] + 30 + dx, _ORIGIN[1] - 30 + dy, _RES, _RES), 40, 30)
    with rasterio.open(north) as n, rasterio.open(flipped) as f:
        assert (f.transform.e > 0) if rows else (f.transform.a < 0)
        assert file_bounds(f) == file_bounds(n) == (500000.0, 1529820.0, 500240.0, 1530000.0)
        check_overlap(f, grid, flipped)  # raised "does not overlap the AOI"
        np.testing.assert_array_equal(warp_to_grid(f, grid, Resampling.bilinear, 0), warp_to_grid(n, grid, Resampling.bilinear, 0))
        np.testing.assert_array_equal(warp_to_grid(f, grid, Resampling.nearest, 0), warp_to_grid(n, grid, Resampling.nearest, 0))
        np.testing.assert_array_equal(warp_float(f, grid), warp_float(n, grid))
    assert native_grid(flipped) == native_grid(north)


def _float64_reflectance(src, grid, bands, scale):
    """The reflectance as it was computed before integer files were divided in float32: the warp's float64, then float32."""
    data = warp_float(src, grid)[bands] / scale
    valid = np.all(np.isfinite(data), axis=0)
    return np.where(valid[None], data, np.nan).astype(np.float32), valid


@pytest.mark.parametrize("dtype, nodata, scale", [("uint16", 0, 10000.0), ("int16", -9999, 10000.0), ("uint8", 255, 1.0),
                                                  ("uint16", None, 10000.0), ("uint16", 0, 3.0), ("int32", 0, 10000.0),
                                                  ("uint16", 0, 0.1)])  # int32, scale 0.1: float32 cannot hold them; read as before
@pytest.mark.parametrize("cols, rows, width, height", [(0, 0, 80, 60), (5, 7, 40, 30), (-6, -4, 40, 30), (70, 50, 40, 30)])
def test_integer_reflectance_on_the_grid_is_what_the_float64_division_gives(tmp_path, dtype, nodata, scale, cols, rows, width, height):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(6)
    data = rng.integers(max(info.min, -3000), min(info.max, 65535), (4, 60, 80), endpoint=True).astype(dtype)
    if nodata is not None:
        data[2, 10:14, 20:30] = nodata  # one band without data: the pixel is not observed in any
        data[:, 40:42, 5:9] = nodata
    path = tmp_path / f"{dtype}.tif"
    with rasterio.open(path, "w", driver="GTiff", width=80, height=60, count=4, dtype=dtype, crs="EPSG:32630",
                       transform=from_origin(*_ORIGIN, _RES, _RES), nodata=nodata) as dst:
        dst.write(data)
    grid = Grid("EPSG:32630", from_origin(_ORIGIN[0] + cols * _RES, _ORIGIN[1] - rows * _RES, _RES, _RES), width, height)
    with rasterio.open(path) as src:
        for bands in ([0, 1, 2, 3], [1, 3], [2]):
            got, valid = read_reflectance(src, grid, bands, scale)
            want, want_valid = _float64_reflectance(src, grid, bands, scale)
            assert got.dtype == np.float32 and got.shape == (len(bands), height, width)
            np.testing.assert_array_equal(got, want)  # NaN where NaN, every other value bit for bit
            np.testing.assert_array_equal(valid, want_valid)
            assert valid.any()
