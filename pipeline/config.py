"""Run parameters: one frozen dataclass, resolved in exactly one place.

Precedence is code default < AOI file (``properties.parameters``) < command line
(``--set name=value``). :func:`resolve_params` is the only function that merges them,
and every run writes the resolved values into its outputs so a finding can be re-run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Literal, Mapping, get_args

from .errors import ParameterError

__all__ = ["Params", "BurnIndexName", "NormalisationName", "resolve_params"]

BurnIndexName = Literal["auto", "nir", "bai", "nbr", "ndvi"]
NormalisationName = Literal["auto", "always", "never"]


@dataclass(frozen=True)
class Params:
    """Every knob of a detection run, with the reason for its default."""

    resolution_m: float = 3.0
    """Analysis pixel size in metres (3 m is PlanetScope's delivered pixel)."""

    margin_m: float = 150.0
    """Ground loaded around the AOI so that shifting a scene never exposes the AOI edge."""

    reference_scene: int = 0
    """Index (in time order) of the scene every other scene is co-registered and normalised to."""

    coreg_band: str = "red"
    """Band used to estimate shifts: trees and compounds have the strongest stable contrast in red."""

    coreg_max_shift_px: float = 40.0
    """Largest shift accepted; a larger estimate means co-registration failed."""

    normalisation: NormalisationName = "auto"
    """Relative radiometric normalisation: ``auto`` applies it to four- and eight-band scenes
    (PlanetScope: radiometry differs from satellite to satellite) and not to scenes with SWIR
    (Sentinel-2 and Landsat surface reflectance are calibrated across dates; fitting one date
    onto another across a season would read land change as radiometry)."""

    burn_index: BurnIndexName = "auto"
    """Index to difference: ``auto`` is NBR when SWIR is present, else the NIR drop."""

    noise_k: float = 4.0
    """Seeds exceed this many robust standard deviations of the scene's background change."""

    grow_k: float = 2.0
    """Growth from seeds stops below this many robust standard deviations (hysteresis)."""

    burn_level: float = -1.0
    """Index change of a burned pixel; -1 = the index's published level (dNBR 0.10, NIR drop 0.08)."""

    max_post_nir: float = 0.15
    """A seed is dark afterwards: char reflects ~0.06 in NIR, so a mostly burned pixel stays under 0.15."""

    mixed_pixel_fraction: float = 0.5
    """A pixel counts as burned when its change reaches this share of its burn's full contrast."""

    min_area_m2: float = 50.0
    """Minimum mapping unit: smaller patches are dropped (a 10 x 10 m compound is 100 m2)."""

    max_hole_px: int = 2
    """Holes of up to this many pixels inside a burn are filled (ash specks, a pixel of wall)."""

    extent_close_m: float = 40.0
    """Burned extent: gaps between burns narrower than about twice this are closed and enclosed
    holes filled (a lane between compounds is 5-20 m; 40 m is two 20 m Sentinel-2 SWIR pixels)."""

    min_clear_fraction: float = 0.02
    """A scene with less clear ground over the AOI than this is reported as unusable."""

    structure_min_overlap: float = 0.5
    """A structure counts as burned when this share of its footprint lies inside burn polygons."""

    structure_tolerance_px: float = 0.5
    """Burn polygons are grown by this many pixels before the overlap rule: pixel polygons have
    staircase edges up to half a pixel inside the burn's edge."""

    footprint_max_shift_m: float = 20.0
    """Footprint layers further off the scenes than this are used as given, not moved."""

    fire_max_distance_m: float = 750.0
    """An active-fire detection corroborates a burn within this distance (VIIRS 375 m pixels
    grow to ~800 m at the swath edge; pass ~1000 for MODIS-only archives)."""

    strong_change_snr: float = 8.0
    """A burn whose mean index change is this many noise sigmas above the background is a strong
    signal for its confidence tier (the seed threshold itself is noise_k sigmas)."""

    def __post_init__(self) -> None:
        checks = [
            (self.resolution_m > 0, "resolution_m must be > 0"),
            (self.margin_m >= 0, "margin_m must be >= 0"),
            (self.reference_scene >= 0, "reference_scene must be >= 0"),
            (self.coreg_max_shift_px > 0, "coreg_max_shift_px must be > 0"),
            (self.burn_index in get_args(BurnIndexName), f"burn_index must be one of {get_args(BurnIndexName)}"),
            (self.normalisation in get_args(NormalisationName), f"normalisation must be one of {get_args(NormalisationName)}"),
            (self.noise_k > 0, "noise_k must be > 0"),
            (self.grow_k > 0, "grow_k must be > 0"),
            (self.burn_level == -1.0 or self.burn_level > 0, "burn_level must be > 0 (or -1 for the index default)"),
            (self.max_hole_px >= 0, "max_hole_px must be >= 0"),
            (0 < self.mixed_pixel_fraction < 1, "mixed_pixel_fraction must be between 0 and 1"),
            (self.min_area_m2 >= 0, "min_area_m2 must be >= 0"),
            (self.extent_close_m >= 0, "extent_close_m must be >= 0"),
            (0 <= self.min_clear_fraction <= 1, "min_clear_fraction must be between 0 and 1"),
            (0 < self.structure_min_overlap <= 1, "structure_min_overlap must be in (0, 1]"),
            (self.footprint_max_shift_m > 0, "footprint_max_shift_m must be > 0"),
            (self.structure_tolerance_px >= 0, "structure_tolerance_px must be >= 0"),
            (self.fire_max_distance_m > 0, "fire_max_distance_m must be > 0"),
            (self.strong_change_snr > 0, "strong_change_snr must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ParameterError(f"parameter {message}; fix the AOI file or the --set value")

    def as_dict(self) -> dict[str, Any]:
        """JSON-able copy for manifests and reports."""
        return dataclasses.asdict(self)


def _coerce(name: str, raw: Any, kind: Any) -> Any:
    """Turn a value from a file or the command line into the field's type."""
    try:
        if kind in (float, "float"):
            return float(raw)
        if kind in (int, "int"):
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError("not a whole number")
            return int(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise ParameterError(f"parameter {name}={raw!r} is not a valid {kind}; give a number") from None


def resolve_params(
    aoi_parameters: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Params:
    """Merge defaults, AOI-file parameters and command-line overrides (later wins).

    Raises
    ------
    ParameterError
        For an unknown parameter name or a value of the wrong kind or range.
    """
    known = {f.name: f.type for f in fields(Params)}
    merged: dict[str, Any] = {}
    for source, values in (("AOI file", aoi_parameters or {}), ("command line", overrides or {})):
        for name, raw in values.items():
            if name not in known:
                raise ParameterError(
                    f"unknown parameter {name!r} from the {source}; known parameters: {', '.join(sorted(known))}"
                )
            kind = known[name]
            merged[name] = _coerce(name, raw, "str" if "Literal" in str(kind) or kind == "str" else kind)
    return Params(**merged)
