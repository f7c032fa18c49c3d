"""The refinement's sampler gives what ``ndimage.map_coordinates`` gives, shift after shift.

The sampler weighs slices of padded arrays instead of asking scipy for every pixel's weights
(:class:`pipeline.stages.coregister._Sampler`). Held here against scipy itself, on an image
with holes in its usable mask, for shifts inside it, across its edges (by a thousandth of a
pixel too, where the usable mask is read as 0 outside however close), on whole pixels and
beyond the padding, where scipy is asked instead.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from pipeline.stages import coregister
from pipeline.stages.coregister import _SAMPLE_PAD, _STRIDE, _Sampler


def _image(shape=(151, 118), seed=3):
    rng = np.random.default_rng(seed)
    mov = ndimage.gaussian_filter(rng.random(shape), 2)
    usable = ndimage.binary_erosion(rng.random(shape) > 0.03, iterations=1, border_value=1)  # usable to the edge
    keep = rng.random((len(range(0, shape[0], _STRIDE)), len(range(0, shape[1], _STRIDE)))) > 0.2
    return mov, usable.astype(np.float64), keep


def _scipy(mov, usable, keep, d):
    rows, cols = (np.nonzero(keep)[axis] * float(_STRIDE) for axis in (0, 1))
    coords = np.vstack([rows + d[0], cols + d[1]])
    coeffs = ndimage.spline_filter(mov, order=3)
    grad_r, grad_c = np.gradient(mov)
    return (ndimage.map_coordinates(coeffs, coords, order=3, prefilter=False, mode="nearest"),
            ndimage.map_coordinates(usable, coords, order=1, mode="constant", cval=0.0) > 0.999,
            ndimage.map_coordinates(grad_r, coords, order=1, mode="nearest"),
            ndimage.map_coordinates(grad_c, coords, order=1, mode="nearest"))


@pytest.mark.parametrize("d", [(0.3, -0.7), (-2.5277, -0.8057), (0.0, 0.0), (0.0005, -0.0004), (-0.0004, 0.0003), (1.0, -2.0), (-0.999999, 0.5),
                               (12.75, -40.25), (-60.1, 3.3), (150.4, -7.9), (-200.0, 250.5)])
def test_samples_are_scipys_to_rounding_at_every_shift(d):
    mov, usable, keep = _image()
    sampler = _Sampler(mov, usable, keep, np.zeros(int(keep.sum())))
    mine, theirs = sampler.sample(np.array(d)), _scipy(mov, usable, keep, d)
    for name, a, b in zip(("cubic", "inside", "gradient rows", "gradient columns"), mine, theirs):
        assert a.shape == b.shape, name
        if a.dtype == bool:
            assert np.array_equal(a, b), f"{name} at {d}: {int((a != b).sum())} samples differ"
        else:
            assert np.max(np.abs(a - b)) <= 1e-12 * max(1.0, np.max(np.abs(b))), f"{name} at {d}"


def test_shifts_within_the_padding_are_not_sampled_by_scipy(monkeypatch):
    mov, usable, keep = _image()
    sampler = _Sampler(mov, usable, keep, np.zeros(int(keep.sum())))

    def refused(*args, **kwargs):
        raise AssertionError("map_coordinates asked for a shift within the padding")

    monkeypatch.setattr(coregister.ndimage, "map_coordinates", refused)
    sampler.sample(np.array([_SAMPLE_PAD - 4.5, -(_SAMPLE_PAD - 4.5)]))
    with pytest.raises(AssertionError, match="map_coordinates"):
        sampler.sample(np.array([_SAMPLE_PAD + 0.5, 0.0]))


def _stack(refl: np.ndarray, clear: np.ndarray):
    import xarray as xr
    return xr.Dataset({"reflectance": (("time", "band", "y", "x"), refl), "clear": (("time", "y", "x"), clear)},
                      coords={"band": ["red", "nir"]})


@pytest.mark.parametrize("holes", [False, True])  # every band finite everywhere, or NaN on the same pixels
@pytest.mark.parametrize("shift", [(0.37, -1.62), (-3.0, 2.5), (0.0004, 0.0)])
def test_a_scene_clear_everywhere_is_moved_to_the_clear_pixels_the_resampled_mask_gives(holes, shift):
    """apply_shifts does not resample a mask that is clear everywhere; the clear pixels are those it would give."""
    rng = np.random.default_rng(4)
    refl = ndimage.gaussian_filter(rng.random((2, 2, 64, 80)), (0, 0, 2, 2)).astype(np.float32)
    if holes:
        refl[1, :, 20:26, 30:41] = np.nan
    clear = np.ones((2, 64, 80), bool)
    estimate = coregister.ShiftEstimate(dy=shift[0], dx=shift[1])
    moved = coregister.apply_shifts(_stack(refl, clear), [coregister.ShiftEstimate(0.0, 0.0), estimate])
    resampled = coregister.undo_shift(clear[1].astype(np.float32), *shift)
    bands = np.stack([coregister.undo_shift(refl[1, b], *shift) for b in range(2)])
    expected = (np.nan_to_num(resampled, nan=0.0) > 0.999) & np.isfinite(bands).all(axis=0)
    np.testing.assert_array_equal(moved["clear"].values[1], expected)
    assert not expected.all() and expected.any()  # the move leaves pixels without a source: the test can fail
    np.testing.assert_array_equal(moved["clear"].values[0], clear[0])
