"""The simulated sensors, and how they image a 1 m ground map.

A PlanetScope-like 3 m four-band sensor and a Sentinel-2-like 10 m one with 20 m SWIR bands
[1]. Imaging samples the ground with a known sub-pixel shift and the detector's area
integration, blurs by a small point-spread function, puts 20 m bands on the 10 m grid, reads
materials through each instrument's band response, draws each scene's band gains and offsets,
and writes the UDM2 quality bands. Pure functions on arrays; the ground is painted in
:mod:`pipeline.sim.ground`, the sky in :mod:`pipeline.sim.sky`.

References
----------
.. [1] ESA, Sentinel-2 MSI User Guide: 10 m blue, green, red, NIR (B2, B3, B4, B8) and 20 m
   SWIR (B11, B12) bands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pipeline.sim.materials import BARE_CROWN, DECIDUOUS, LUT, LUT_S2, PS2_FACTORS, TREE
from pipeline.sim.scenarios import Acquisition

#: Band order of PlanetScope-like ``SimulatedScene.reflectance`` (4-band analytic order).
BANDS = ("blue", "green", "red", "nir")
#: Band order of the ``"sentinel2"`` scenario (B2, B3, B4, B8, B11, B12 [1]).
S2_BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")

_SUB = 3  # 1 m ground cells per 3 m pixel side
MARGIN_M = 48  # least ground beyond the grid: the demo's shifts (<= 12 m), padding (9 m) and PSF
_PAD_PX = 3  # pixels imaged beyond the grid so the PSF has true neighbours at the edges
_PSF_SIGMA_PX = 0.5  # with the pixel's box integration, MTF ~0.2 at Nyquist (S2's spec: 0.15-0.3)
_NOISE_SIGMA = (0.005, 0.0045, 0.0045, 0.006)  # per band, reflectance units
_CONFIDENCE = {"none": 95, "light": 85, "moderate": 75, "dense": 70}
# Each instrument's systematic band gain and offset on top of every satellite's own (a linear
# map per band: the part that per-band normalisation can undo).
_INSTRUMENT_RADIOMETRY = {"PS2": ((1.03, 0.97, 1.05, 0.94), (0.004, 0.002, -0.003, 0.006)),
                          "PSB.SD": ((1.0, 1.0, 1.0, 1.0), (0.0, 0.0, 0.0, 0.0))}


@dataclass(frozen=True)
class Sensor:
    """How a sensor samples the ground (pixel, bands, noise, per-satellite radiometry)."""

    name: str
    bands: tuple[str, ...]
    pixel_m: int
    noise: tuple[float, ...]
    gain: tuple[float, float]  # per-satellite band gains drawn in this range
    offset: tuple[float, float]
    coarse: tuple[bool, ...]  # bands integrated on pixels twice as large, resampled bilinearly
    pad_px: int  # even for Sentinel-2, so 20 m pixels pair the grid's 10 m pixels (0-1, 2-3...)


SENSORS = {
    "planetscope": Sensor("PlanetScope-like", BANDS, 3, _NOISE_SIGMA, (0.93, 1.07), (-0.01, 0.01),
                           (False,) * 4, _PAD_PX),
    "sentinel2": Sensor("Sentinel-2-like", S2_BANDS, 10, (0.003, 0.0025, 0.0025, 0.003, 0.003, 0.003),
                         (0.98, 1.02), (-0.003, 0.003), (False,) * 4 + (True, True), 4),
}


def sensor_radiometry(rng: np.random.Generator, sensor: Sensor, instrument: str) -> tuple[np.ndarray, np.ndarray]:
    """Band gains and offsets of one scene: its satellite's, times its instrument's (rounded)."""
    n = len(sensor.bands)
    # Rounded before use, so the metadata holds exactly what was applied.
    gain, offset = np.round(rng.uniform(*sensor.gain, n), 5), np.round(rng.uniform(*sensor.offset, n), 5)
    if instrument:
        g, o = _INSTRUMENT_RADIOMETRY[instrument]
        gain, offset = np.round(gain * np.array(g), 5), np.round(offset + np.array(o), 5)
    return gain, offset


def scene_lut(acq: Acquisition, sensor: Sensor) -> np.ndarray:
    """(band, material) reflectance as this scene's instrument sees it on its date."""
    lut = LUT_S2 if len(sensor.bands) > 4 else LUT
    if acq.leaf_loss or acq.instrument:
        lut = lut.copy()
    if acq.leaf_loss:
        lut[:, DECIDUOUS] = (1 - acq.leaf_loss) * lut[:, TREE] + acq.leaf_loss * lut[:, BARE_CROWN]
    if acq.instrument == "PS2":
        lut *= PS2_FACTORS
    return lut


def image_ground(ground: np.ndarray, shift: tuple[float, float], shape: tuple[int, int], *, sub: int = _SUB,
           margin: int = MARGIN_M, pad: int = _PAD_PX, coarse: bool = False) -> np.ndarray:
    """Image a 1 m ground map onto the grid, content displaced by ``shift`` pixels.

    Each pixel averages ``sub`` x ``sub`` sub-samples (the detector's area integration) taken
    at ground position ``nominal - shift``, read by linear interpolation between 1 m cells (the
    same numbers as ``scipy.ndimage.map_coordinates(order=1)``, done as two weighted slices
    because the displacement is the same everywhere), then a Gaussian PSF of 0.5 px. A
    ``coarse`` band is integrated on pixels twice as large instead (pairs of grid pixels from
    the padded origin, so aligned with the grid's even indices), blurred by 0.5 of those
    pixels and resampled bilinearly onto the grid, as a loader putting Sentinel-2's 20 m SWIR
    on the 10 m grid would.
    """
    h, w = shape
    n_r, n_c = sub * (h + 2 * pad), sub * (w + 2 * pad)
    out = ground
    for axis, d, n in ((0, shift[0], n_r), (1, shift[1], n_c)):
        s = -sub * d  # ground metres to read from, relative to the nominal position
        a = math.floor(s)
        f = np.float32(s - a)
        start = margin - sub * pad + a
        lo = out[start:start + n] if axis == 0 else out[:, start:start + n]
        hi = out[start + 1:start + 1 + n] if axis == 0 else out[:, start + 1:start + 1 + n]
        out = lo * (1 - f) + hi * f
    pix = out.reshape(h + 2 * pad, sub, w + 2 * pad, sub).mean(axis=(1, 3))
    pix = _coarse_band(pix) if coarse else ndimage.gaussian_filter(pix, _PSF_SIGMA_PX)
    return pix[pad:-pad, pad:-pad]


def _coarse_band(pix: np.ndarray) -> np.ndarray:
    """Average 2 x 2 pixel blocks, blur, and interpolate back onto the fine pixel centres."""
    h, w = pix.shape
    block = pix[:h // 2 * 2, :w // 2 * 2].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    block = ndimage.gaussian_filter(block, _PSF_SIGMA_PX)
    # Fine pixel i's centre is at coarse coordinate (i + 0.5) / 2 - 0.5 (centres at 0, 1...).
    rows, cols = (np.arange(h) - 0.5) / 2, (np.arange(w) - 0.5) / 2
    return ndimage.map_coordinates(block, np.meshgrid(rows, cols, indexing="ij"), order=1,
                                   mode="nearest").astype(np.float32)


def make_udm2(shape: tuple[int, int], haze: str, cloud_px: np.ndarray | None,
          shadow_px: np.ndarray | None, *, flag_shadow: bool = True) -> np.ndarray:
    """Planet UDM2 bands; flags are dilated by 2 px so they also cover the soft cloud edges.

    ``flag_shadow=False`` reproduces a known UDM2 failure: the shadow is left marked clear.
    """
    udm = np.zeros((8, *shape), dtype=np.uint8)
    cloud = np.zeros(shape, dtype=bool)
    shadow = np.zeros(shape, dtype=bool)
    square = np.ones((3, 3), dtype=bool)
    if cloud_px is not None:
        cloud = ndimage.binary_dilation(cloud_px > 0.02, square, iterations=2)
        if flag_shadow:
            shadow = ndimage.binary_dilation(shadow_px > 0.03, square, iterations=2) & ~cloud
    clear = ~(cloud | shadow)
    udm[0], udm[2], udm[5] = clear, shadow, cloud
    if haze != "none":
        # Project convention: light haze is usable, so it keeps clear = 1. Real UDM2 classes
        # (bands 0-5) are mutually exclusive: a real light-haze pixel has clear = 0.
        udm[3] = clear
    udm[6] = np.where(clear, _CONFIDENCE[haze], 60)
    return udm
