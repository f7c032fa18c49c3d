"""Run parameters: one frozen dataclass, resolved in exactly one place.

Precedence is code default < AOI file (``properties.parameters``) < command line
(``--set name=value``). :func:`resolve_params` is the only function that merges them,
and every run writes the resolved values into its outputs so a finding can be re-run.

Every value, from an AOI file or the command line, goes through one typed check
(:func:`check_parameters`): a number must be a finite number inside the field's
documented range (``inf``, ``nan``, a boolean, a list or an object never pass for one), a
name must be one of its field's choices. The ranges are wide enough for every sensor and
place burnscan reads and narrow enough that a value outside them is a mistake: a typo, a
unit slip, or a value that would only make a run exhaust memory or run for hours.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from numbers import Real
from typing import Any, Literal, Mapping, get_args

from pipeline.errors import ParameterError, json_kind

__all__ = ["Params", "BurnIndexName", "NormalisationName", "BandName", "BAND_NAMES", "NATIVE", "resolve_params",
           "check_parameters", "parameter_range", "FIGURE_WIDTHS_MM", "figure_width_mm"]

BurnIndexName = Literal["auto", "nir", "bai", "nbr", "ndvi"]
NormalisationName = Literal["auto", "always", "never"]
BandName = Literal["blue", "green", "red", "nir", "swir16", "swir22",
                   "coastal_blue", "green_i", "yellow", "rededge"]
"""Canonical band names: the six every reader maps to (:mod:`pipeline.readers.recognise`) and the other
four of PlanetScope's 8-band SuperDove deliveries (:mod:`pipeline.readers.planet`)."""

BAND_NAMES: tuple[str, ...] = get_args(BandName)

NATIVE = "native"
"""``resolution_m`` of a run whose analysis grid follows its scenes (:mod:`pipeline.resolution`)."""


@dataclass(frozen=True)
class _Range:
    """Plausible values of a numeric field, from ``low`` to ``high`` (each excluded when open)."""

    low: float
    high: float
    open_low: bool = False
    open_high: bool = False
    also: float | None = None
    """One more accepted value outside the range (``burn_level`` = -1 means the index default)."""
    word: str | None = None
    """A name accepted instead of a number (``resolution_m`` = ``native``: the scenes' own pixel)."""

    def holds(self, value: float) -> bool:
        if self.also is not None and value == self.also:
            return True
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below

    def text(self) -> str:
        rule = f"{'>' if self.open_low else '>='} {self.low:g} and {'<' if self.open_high else '<='} {self.high:g}"
        return rule + (f" (or {self.also:g})" if self.also is not None else "") + (f" (or {self.word})" if self.word else "")


def _limits(default: Any, low: float, high: float, *, open_low: bool = False, open_high: bool = False,
            also: float | None = None, word: str | None = None) -> Any:
    return field(default=default, metadata={"range": _Range(low, high, open_low, open_high, also, word)})


def _choices(default: str, options: tuple[str, ...]) -> Any:
    return field(default=default, metadata={"choices": options})


@dataclass(frozen=True)
class Params:
    """Every knob of a detection run, with the reason for its default and for its range."""

    resolution_m: float | str = _limits(NATIVE, 0.3, 100.0, word=NATIVE)
    """Analysis pixel size in metres, or ``native``: the coarsest native pixel of the bands the burn
    index reads (3 m PlanetScope, 10 m Sentinel-2 without SWIR, 20 m with it, 30 m Landsat, a plain
    GeoTIFF's own pixel), chosen from the scenes' headers before any pixel is read and recorded with
    its reason (:mod:`pipeline.resolution`). A finer grid only interpolates the coarse band: it
    invents no detail, costs time with the square of the ratio and blurs the threshold's noise
    estimate. Range 0.3-100: 0.3 m is the finest civil satellite pixel (WorldView-3); at 100 m a
    compound is a tenth of a pixel and Landsat's 30 m is already coarser than any village burn needs."""

    margin_m: float = _limits(150.0, 0.0, 2000.0)
    """Ground loaded around the AOI so that shifting a scene never exposes the AOI edge. Range
    0-2000: the largest shift accepted (coreg_max_shift_px) is 1.2 km on 30 m Landsat pixels;
    more margin only multiplies the pixels loaded."""

    reference_scene: int = _limits(0, 0, 999)
    """Index (in time order) of the scene every other scene is co-registered and normalised to.
    Range 0-999: checked against the usable scenes when they are known; past 999 is a typo."""

    coreg_band: BandName = _choices("red", BAND_NAMES)
    """Band used to estimate shifts: trees and compounds have the strongest stable contrast in red.
    One of the canonical band names; the scenes must carry it."""

    coreg_max_shift_px: float = _limits(40.0, 0.0, 200.0, open_low=True)
    """Largest shift accepted; a larger estimate means co-registration failed. Range (0, 200]:
    orthorectified scenes agree to a few pixels (PlanetScope ~10 m RMSE); 200 px apart they show
    different ground, and the correlation window cannot measure it."""

    normalisation: NormalisationName = _choices("auto", get_args(NormalisationName))
    """Relative radiometric normalisation: ``auto`` applies it to four- and eight-band scenes
    (PlanetScope: radiometry differs from satellite to satellite) and not to scenes with SWIR
    (Sentinel-2 and Landsat surface reflectance are calibrated across dates; fitting one date
    onto another across a season would read land change as radiometry). Under ``auto`` the burned
    fraction and the non-fire tests still read SWIR scenes mapped onto the clearest one: they
    compare bands with fixed spectra and between dates, and residual haze is a gain per band as
    well as an offset. ``never`` leaves every reading as delivered."""

    burn_index: BurnIndexName = _choices("auto", get_args(BurnIndexName))
    """Index to difference: ``auto`` is NBR when SWIR is present, else the NIR drop."""

    noise_k: float = _limits(4.0, 0.0, 50.0, open_low=True)
    """Seeds exceed this many robust standard deviations of the scene's background change.
    Range (0, 50]: a fresh burn's dNBR (0.3-0.7) is 15-70 noise sigmas (0.01-0.02); past 50
    no burn would seed."""

    grow_k: float = _limits(2.0, 0.0, 50.0, open_low=True)
    """Growth from seeds stops below this many robust standard deviations (hysteresis). Range as
    ``noise_k``."""

    burn_level: float = _limits(-1.0, 0.0, 2.0, open_low=True, also=-1.0)
    """Index change of a burned pixel; -1 = the index's published level (dNBR 0.10, NIR drop 0.08).
    Range (0, 2] or -1: normalised-difference indices change by at most 2."""

    max_post_nir: float = _limits(0.15, 0.0, 1.0, open_low=True)
    """A seed is dark afterwards: char reflects ~0.06 in NIR, so a mostly burned pixel stays under
    0.15. Range (0, 1]: a reflectance."""

    max_post_nbr: float = _limits(-0.10, -1.0, 1.0)
    """The same rule where SWIR exists: a seed's NBR after the change is at most this, unless its
    dNBR reaches ``seed_dnbr_no_char``. Char and ash lower NIR and raise SWIR, so a burned surface
    has negative NBR, while vegetation that dried, browned or was harvested loses NBR but keeps
    it positive; -0.10 is the post-fire condition of CIR Burnscar's rule. Only seeds must meet it:
    growth still takes the lightly burned pixels around them. Range [-1, 1]: NBR's own range."""

    seed_dnbr_no_char: float = _limits(0.27, 0.0, 2.0, open_low=True)
    """A seed whose NBR stays above ``max_post_nbr`` needs at least this dNBR: 0.27 is the lower
    bound of moderate severity (Key & Benson 2006). A canopy fire leaves a scorched canopy with
    positive NBR but a large drop; a drop within low severity (0.10-0.27) with positive NBR after
    is what drying or browning vegetation also gives, so alone it seeds nothing. Range (0, 2]:
    dNBR's range."""

    mixed_pixel_fraction: float = _limits(0.5, 0.0, 1.0, open_low=True, open_high=True)
    """A pixel counts as burned when its change reaches this share of its burn's full contrast.
    Range (0, 1): a share strictly inside, or every pixel or none would count."""

    rim_burned_fraction: float = _limits(0.5, 0.0, 1.0, open_low=True, open_high=True)
    """A pixel on a burn's rim (or in a hole inside it) counts as burned when at least this share of
    it burned, by unmixing against its own before-state (:mod:`pipeline.stages.fraction`); 0.5 makes
    the pixel area of a burn its true area on average. Range (0, 1): as ``mixed_pixel_fraction``."""

    psf_sigma_px: float = _limits(0.5, 0.0, 2.0)
    """The sensor's blur beyond its pixel's own square, as a Gaussian sigma in grid pixels, undone on the
    burned shares before the rim of a burn one or two pixels across is cut
    (:mod:`pipeline.stages.sharpen`). 0.5: with the square, a modulation transfer of about
    0.2 at Nyquist, inside Sentinel-2's specified 0.15-0.3. 0 leaves the shares as read. Range
    0-2: a wider blur than two pixels is not a sensor's, and undoing it would amplify the noise."""

    min_area_m2: float = _limits(50.0, 0.0, 1e6)
    """Minimum mapping unit: smaller patches are dropped (a 10 x 10 m compound is 100 m2), except
    that where shares are unmixed a patch down to half the unit stays when 15 m2 of it (two
    pixels or more) unmix as char or ash. Range 0-1e6: 1 km2 already drops every village burn;
    more is a unit slip (hectares or km2)."""

    max_hole_px: int = _limits(2, 0, 1000)
    """Holes of up to this many pixels inside a burn are filled (ash specks, a pixel of wall).
    Range 0-1000: a larger hole is unburned ground (a courtyard, a field), not a speck."""

    split_wall_contrast: float = _limits(0.1, 0.0, 1.0, open_low=True)
    """A burned patch is split along a wall between compounds where the before-scene shows the wall
    at least this share brighter than the burned pixels on both its sides, and the wall changed
    this share less than they did (:mod:`pipeline.stages.split`). 0.1: a banco or laterite wall
    across a 3 m pixel lifts it 10-30 % above a courtyard of roofs and straw, while the noise of
    a normalised scene is a few percent. Range (0, 1]: at 0 noise alone would cut patches; a
    wall twice as bright as the ground beside it is never seen at these pixel sizes."""

    extent_close_m: float = _limits(40.0, 0.0, 1000.0)
    """Burned extent: gaps between burns narrower than about twice this are closed and enclosed
    holes filled (a lane between compounds is 5-20 m; 40 m is two 20 m Sentinel-2 SWIR pixels).
    Range 0-1000: closing over 2 km joins separate villages, and the closing pads the grid by
    this radius on every side."""

    min_clear_fraction: float = _limits(0.02, 0.0, 1.0)
    """A scene with less clear ground over the AOI than this is reported as unusable. Range 0-1:
    a share."""

    structure_min_overlap: float = _limits(0.5, 0.0, 1.0, open_low=True)
    """A structure counts as burned when this share of its footprint lies inside burn polygons.
    Range (0, 1]: a share."""

    structure_tolerance_px: float = _limits(0.5, 0.0, 10.0)
    """Burn polygons are grown by this many pixels before the overlap rule: pixel polygons have
    staircase edges up to half a pixel inside the burn's edge. Range 0-10: footprints further
    off are moved by the footprint alignment, not absorbed by a tolerance (but see
    ``footprint_unaligned_m``)."""

    footprint_unaligned_m: float = _limits(4.0, 0.0, 100.0)
    """When a footprint layer's offset cannot be measured on the scenes (pixels too coarse to show
    the huts, too few footprints), burn polygons are grown by this many metres more before the
    overlap rule: the layer is then off by what open footprints are typically off, about 4 m on
    average for OpenStreetMap buildings against a cadastral reference (Fan et al. 2014, Munich;
    under 3 m in Lombardy, Brovelli & Zamboni 2018). Range 0-100: an offset that large is measured
    or refused (``footprint_max_shift_m``), never absorbed."""

    footprint_max_shift_m: float = _limits(30.0, 0.0, 500.0, open_low=True)
    """Footprint layers further off the scenes than this are used as given, not moved. The offset
    measured is the layer's own (open layers: metres to about 10 m) plus the reference scene's
    geolocation error (PlanetScope: under 10 m RMSE, so 15-20 m in some scenes): a scene 15 m off and
    a layer 6 m off are 21 m apart. Range (0, 500]: 500 m off is another place."""

    fire_max_distance_m: float = _limits(750.0, 0.0, 10_000.0, open_low=True)
    """An active-fire detection corroborates a burn within this distance (VIIRS 375 m pixels
    grow to ~800 m at the swath edge; pass ~1000 for MODIS-only archives). Range (0, 10000]:
    MODIS edge pixels are ~5 km long; further, any fire in the region would match."""

    strong_change_snr: float = _limits(8.0, 0.0, 100.0, open_low=True)
    """A burn whose mean index change is this many noise sigmas above the background is a strong
    signal for its confidence tier (the seed threshold itself is noise_k sigmas). Range (0, 100]
    as ``noise_k``."""

    figure_width_mm: float = _limits(89.0, 80.0, 600.0)
    """Printed width of every figure, laid out at 300 dpi for it: 89 mm is one journal column,
    183 two columns, 254 a slide (``burnscan detect --figure-width``). Changes no finding.
    Range 80-600: narrower, the layout's promises fail (at 70 mm a timeline is over 1.5 times as
    tall as wide; at 40 mm legends are cut and labels overlap); wider is a poster, not a page."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            problem = _problem(f, value)
            if problem:
                raise ParameterError(f"parameter {f.name}={value!r}: {f.name} {problem}; fix the AOI file or the --set value")

    def as_dict(self) -> dict[str, Any]:
        """JSON-able copy for manifests and reports."""
        return dataclasses.asdict(self)


_FIELDS = {f.name: f for f in fields(Params)}

FIGURE_WIDTHS_MM: dict[str, float] = {"column": 89.0, "double": 183.0, "slide": 254.0}
"""Named figure widths: one journal column, two columns (a full page width), a 10-inch slide."""


def figure_width_mm(text: str) -> float:
    """Millimetres of a ``--figure-width`` value: a name of :data:`FIGURE_WIDTHS_MM` or a number (mm).

    >>> figure_width_mm("double"), figure_width_mm("120")
    (183.0, 120.0)
    """
    name = str(text).strip().lower().removesuffix("mm").strip()
    if name in FIGURE_WIDTHS_MM:
        return FIGURE_WIDTHS_MM[name]
    try:
        value = float(name)
    except ValueError:
        value = math.nan
    if not _FIELDS["figure_width_mm"].metadata["range"].holds(value):
        raise ParameterError(f"--figure-width {text!r}: give {', '.join(FIGURE_WIDTHS_MM)} or a width in mm "
                             f"{parameter_range('figure_width_mm')}")
    return value


def parameter_range(name: str) -> str:
    """The accepted values of parameter ``name``, as the error messages say them.

    >>> parameter_range("resolution_m")
    '>= 0.3 and <= 100 (or native)'
    """
    meta = _FIELDS[name].metadata
    return meta["range"].text() if "range" in meta else "one of " + ", ".join(meta["choices"])


def _is_int_field(f: dataclasses.Field) -> bool:
    return f.type in (int, "int")


def _problem(f: dataclasses.Field, value: Any) -> str | None:
    """What is wrong with a field's value, as "must be ..." (``None`` when nothing)."""
    if "choices" in f.metadata:
        return None if isinstance(value, str) and value in f.metadata["choices"] else f"must be {parameter_range(f.name)}"
    if f.metadata["range"].word is not None and value == f.metadata["range"].word:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        return "must be a number"
    if not math.isfinite(value):
        return "must be a finite number"
    if _is_int_field(f) and value != int(value):
        return "must be a whole number"
    return None if f.metadata["range"].holds(value) else f"must be {parameter_range(f.name)}"


def _typed(f: dataclasses.Field, raw: Any, source: str, told: str | None = None) -> Any:
    """``raw`` from ``source`` as the field's type, or a one-line :class:`ParameterError` (with the fix ``told``, if given)."""
    def refuse(what: str, fix: str) -> ParameterError:
        return ParameterError(f"parameter {f.name}={raw!r} from the {source} {what}; {told or fix}")

    if "choices" in f.metadata:
        if not isinstance(raw, str):
            raise refuse(f"is {json_kind(raw)}, not a name", f"give one of {', '.join(f.metadata['choices'])}")
        return raw.strip()
    wanted = "whole number" if _is_int_field(f) else "number"
    fix = f"give {f.name} as a {wanted} {parameter_range(f.name)}"
    word = f.metadata["range"].word
    if word is not None and isinstance(raw, str) and raw.strip().lower() == word:
        return word
    # bool is an int in Python: JSON true must not pass as 1, nor a list be coerced.
    if isinstance(raw, bool) or not isinstance(raw, (Real, str)):
        raise refuse(f"is {json_kind(raw)}, not a {wanted}", fix)
    try:
        value = float(raw.strip()) if isinstance(raw, str) else float(raw)
    except (ValueError, OverflowError):
        raise refuse(f"is not a valid {wanted}", fix) from None
    if not math.isfinite(value):  # "inf", "nan", 1e999: float() takes them all
        raise refuse("is not a finite number", fix)
    if _is_int_field(f):
        if not value.is_integer():
            raise refuse(f"is not a valid {wanted}", fix)
        return int(value)
    return value


def check_parameters(values: Any, *, source: str, fix: str | None = None) -> dict[str, Any]:
    """Type and range-check parameter ``values`` from ``source``; return them typed.

    This is the one check every parameter value passes, from an AOI file's ``parameters``
    object and from ``--set`` alike, so that the two can never disagree on what is valid.

    Parameters
    ----------
    values
        Parameter names to values: JSON values from a file, text from the command line.
    source
        Where they come from, for the message: ``"command line"`` or ``"AOI file <path>"``.
    fix
        What the message says to do instead of fixing the value: a file burnscan wrote (a run's
        manifest) is not mended by hand.

    Raises
    ------
    ParameterError
        For values that are not a mapping, an unknown name, a value of the wrong kind
        (a boolean, list or object for a number, ``inf``, ``nan``) or out of range.

    Examples
    --------
    >>> check_parameters({"noise_k": "5", "coreg_band": "nir"}, source="command line")
    {'noise_k': 5.0, 'coreg_band': 'nir'}
    """
    if not isinstance(values, Mapping):
        raise ParameterError(f"parameters from the {source} are {json_kind(values)}, not an object; " + (
            fix or "give an object of name: value pairs, e.g. {\"noise_k\": 5}"))
    typed: dict[str, Any] = {}
    for name, raw in values.items():
        f = _FIELDS.get(name) if isinstance(name, str) else None
        if f is None:
            raise ParameterError(f"unknown parameter {name!r} from the {source}; "
                                 + (fix or f"known parameters: {', '.join(sorted(_FIELDS))}"))
        value = _typed(f, raw, source, fix)
        problem = _problem(f, value)
        if problem:
            raise ParameterError(f"parameter {name}={raw!r} from the {source}: {name} {problem}; "
                                 + (fix or f"fix the {'--set value' if source == 'command line' else 'value'}"))
        typed[name] = value
    return typed


def resolve_params(
    aoi_parameters: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    aoi_source: str = "AOI file",
) -> Params:
    """Merge defaults, AOI-file parameters and command-line overrides (later wins).

    ``aoi_source`` names the AOI file in messages (e.g. ``"AOI file aoi/ogota.geojson"``).

    Raises
    ------
    ParameterError
        For an unknown parameter name or a value of the wrong kind or range.
    """
    merged = check_parameters(aoi_parameters or {}, source=aoi_source)
    merged.update(check_parameters(overrides or {}, source="command line"))
    return Params(**merged)
