"""False-colour composites of scenes: the pixels every figure, GIS raster and review page shows.

Plain arrays, no drawing: the composite (R = NIR, G = red, B = green by default) of a scene and
the stretch that maps its reflectance to 0..1, one stretch shared by the scenes compared so that
a change of colour between them is a change of ground. Kept apart from :mod:`pipeline.outputs.figures`
so that what needs only the pixels (the GIS rasters, the review page, a check of a scene's bands)
does not load matplotlib's figure machinery.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from pipeline.errors import ParameterError, SceneError

__all__ = ["Stretch", "CIR_BANDS", "NATURAL_BANDS", "composite_problem", "false_colour", "joint_stretch", "composite_planes",
           "stretch_of", "checked_stretch", "to_rgb"]

Stretch = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
"""(low, high) reflectance per displayed channel R, G, B = NIR, red, green."""

# Colour infrared: vegetation reflects NIR strongly and shows red; ash and charred ground
# are dark in NIR as in red, so burns show dark against it.
CIR_BANDS = ("nir", "red", "green")
NATURAL_BANDS = ("red", "green", "blue")  # natural colour, for readers who do not read infrared composites


def composite_problem(bands, *, fix: str) -> str | None:
    """What scenes of ``bands`` lack for the infrared composite every figure shows, with ``fix``; ``None`` if nothing.

    >>> composite_problem(["red", "nir", "swir22"], fix="give --no-figures")
    'has no green band, which the infrared composites show (R = NIR, G = red, B = green); give --no-figures'
    """
    lacking = [b for b in CIR_BANDS if b not in bands]
    if not lacking:
        return None
    return f"has no {', '.join(lacking)} band, which the infrared composites show (R = NIR, G = red, B = green); {fix}"


_PERCENTILES = (2.0, 98.0)
_NAN_GREY = 0.5


def false_colour(scene: xr.DataArray, *, stretch: Stretch | None = None) -> tuple[np.ndarray, Stretch]:
    """Colour-infrared composite (R=NIR, G=red, B=green) of a scene, scaled to 0..1.

    Parameters
    ----------
    scene
        Reflectance with dims ``("band", "y", "x")`` and bands ``nir``, ``red``, ``green``.
    stretch
        Reflectance shown black and full per channel; by default the 2nd-98th percentile
        of the scene's finite values. Pass :func:`joint_stretch` of several scenes so they
        are shown on one scale.

    Returns
    -------
    rgb, stretch
        ``(H, W, 3)`` float array in the scene's row order (unobserved NaN pixels mid grey)
        and the stretch used, to reuse on another scene.

    Examples
    --------
    >>> rgb, s = false_colour(scene)  # doctest: +SKIP
    """
    planes = composite_planes(scene)
    stretch = stretch_of([planes]) if stretch is None else checked_stretch(stretch)
    return to_rgb(planes, stretch), stretch


def joint_stretch(*scenes: xr.DataArray, bands: tuple[str, str, str] = CIR_BANDS) -> Stretch:
    """One stretch over several scenes, so a colour change between them is a change of ground.

    Per-scene stretches would rescale each date on its own and could make an unchanged field
    look brighter or darker; one shared stretch leaves only real reflectance changes.

    Returns
    -------
    Stretch
        2nd-98th percentile of the finite values of all scenes, per channel.

    Examples
    --------
    >>> s = joint_stretch(before, after)  # doctest: +SKIP
    >>> rgb_before, _ = false_colour(before, stretch=s)  # doctest: +SKIP
    """
    if not scenes:
        raise ParameterError("joint_stretch() needs at least one scene; pass the before and after scenes")
    return stretch_of([composite_planes(s, bands) for s in scenes])


def composite_planes(scene: xr.DataArray, bands: tuple[str, str, str] = CIR_BANDS) -> np.ndarray:
    """The three planes shown as red, green, blue (NIR, red, green by default) as a ``(3, H, W)`` array."""
    sid = scene.attrs.get("scene_id", "?")
    names = [str(b) for b in scene["band"].values] if "band" in scene.coords else []
    missing = [b for b in bands if b not in names]
    if missing:
        raise SceneError(f"scene {sid!r} lacks band(s) {missing} (has {names}); "
                         f"this composite needs {', '.join(bands)}: load those bands too")
    if scene.sizes.get("x", 0) < 2 or scene.sizes.get("y", 0) < 2 or not np.all(np.diff(scene["x"].values) > 0):
        raise SceneError(f"scene {sid!r} needs at least 2x2 pixels and eastings increasing along x; "
                         "pass the scene as loaded onto the analysis grid")
    return scene.sel(band=list(bands)).transpose("band", "y", "x").values.astype(np.float32)


def stretch_of(planes: list[np.ndarray]) -> Stretch:
    """2nd-98th percentile per channel over the finite values of all arrays."""
    out = []
    for c in range(3):
        values = np.concatenate([p[c].ravel() for p in planes])
        values = values[np.isfinite(values)]
        lo, hi = np.percentile(values, _PERCENTILES) if values.size else (0.0, 1.0)
        out.append((float(lo), float(max(hi, lo + 1e-3))))  # a flat channel must not divide by 0
    return (out[0], out[1], out[2])


def checked_stretch(stretch: Stretch) -> Stretch:
    try:
        pairs = [(float(lo), float(hi)) for lo, hi in stretch]
    except (TypeError, ValueError):
        pairs = []
    if len(pairs) != 3 or not all(hi > lo for lo, hi in pairs):
        raise ParameterError(f"stretch must be three (low, high) pairs with high > low, for NIR, red, green; "
                             f"got {stretch!r}. Pass None to compute it, or what joint_stretch() returned")
    return (pairs[0], pairs[1], pairs[2])


def to_rgb(planes: np.ndarray, stretch: Stretch) -> np.ndarray:
    lo = np.array([s[0] for s in stretch], dtype=np.float32)[:, None, None]
    hi = np.array([s[1] for s in stretch], dtype=np.float32)[:, None, None]
    rgb = np.moveaxis(np.clip((planes - lo) / (hi - lo), 0.0, 1.0), 0, -1)
    rgb[~np.isfinite(rgb).all(axis=-1)] = _NAN_GREY
    return rgb
