"""The ``burnscan`` command line: parse, call the library, map errors to one line and an exit code."""

from __future__ import annotations

import logging
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, NoReturn

import click

from pipeline.aoi import AOI_DIR, list_aois, load_aoi
from pipeline.errors import AoiError, ParameterError, PipelineError, RunError
from pipeline.preflight import CHUNK_PX_RANGE, SEARCH_BOX_SIDE_M

__all__ = ["main", "cli"]


def _parse_sets(values: tuple[str, ...]) -> dict[str, str]:
    overrides = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not name=value (e.g. --set noise_k=5)", param_hint="--set")
        name, value = item.split("=", 1)
        overrides[name.strip()] = value.strip()
    return overrides


def _option_error(param: click.Parameter | None, value: Any, rule: str) -> ParameterError:
    name = param.opts[-1] if param is not None and param.opts else "option"
    return ParameterError(f"{name} {value!r} is not accepted: give {rule}")


def _rule(kind: str, low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{kind} from {low:g} to {high:g}"
    return f"{kind} >= {low:g}" if low is not None else f"{kind} <= {high:g}"


class _WholeIn(click.IntRange):
    """A whole-number option in a range; a bad value is one error line (ParameterError), not a usage screen."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            raise _option_error(param, value, _rule("a whole number", self.min, self.max)) from None


class _FiniteIn(click.FloatRange):
    """A number option in a range; ``inf`` and ``nan`` are refused too (``nan`` passes any range test)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = super().convert(value, param, ctx)
        except click.BadParameter:
            number = math.nan
        if not math.isfinite(number):
            raise _option_error(param, value, _rule("a finite number", self.min, self.max))
        return number


class _Folder(click.Path):
    """A folder option that may not exist yet; a regular file given (or on its way) is one error line.

    Without it a file given as ``--data`` surfaced only when a subfolder could not be made in it, as
    a disk or permission problem.
    """

    def __init__(self) -> None:
        super().__init__(path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        path = super().convert(value, param, ctx)
        existing = path
        try:
            while not existing.exists() and existing != existing.parent:
                existing = existing.parent
            is_file = existing.exists() and not existing.is_dir()
        except (OSError, ValueError):  # unreadable or impossible: said where the folder is used
            return path
        if is_file:
            name = param.opts[-1] if param is not None and param.opts else "option"
            what = "is a file" if existing == path else f"lies in {existing}, which is a file"
            raise ParameterError(f"{name} {str(path)!r} {what}, not a folder; give a folder (it is created if missing)")
        return path


class _EchoHandler(logging.Handler):
    """The package's log records as plain lines on stderr, where progress has always gone.

    The stream is looked up at each line (through click), not kept: a test or a notebook
    that swaps ``sys.stderr`` sees the lines where it expects them.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "published_as_event", False):  # a batch worker's line, shown with its AOI by the batch
            return
        try:
            click.echo(self.format(record), err=True)
        except Exception:  # a line that cannot be shown must not stop the run
            self.handleError(record)


def _log_to_stderr(level: int) -> Callable[[], None]:
    """Show the package's records at ``level`` and above on stderr; return what undoes it.

    Only the ``pipeline`` logger is set: libraries' own INFO chatter (matplotlib's font cache,
    dask's cluster) stays out of the user's way, and their warnings still reach stderr through
    Python's last-resort handler, as before. Undone when the command ends, so that commands run
    one after the other in one process (tests, notebooks) never stack handlers or levels.
    """
    package = logging.getLogger("pipeline")
    handler = _EchoHandler(level)
    handler.setFormatter(logging.Formatter("%(message)s"))
    previous = package.level
    package.addHandler(handler)
    package.setLevel(level)

    def undo() -> None:
        package.removeHandler(handler)
        package.setLevel(previous)

    return undo


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Say more: every step, including debug messages.")
@click.option("-q", "--quiet", is_flag=True, help="Say less: warnings, errors and results only, no progress.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """Find and date burned villages on before/after infrared satellite scenes.

    Progress goes to stderr, results to stdout.
    """
    if verbose and quiet:
        raise ParameterError("-v (say more) and -q (say less) contradict each other; give one of them")
    ctx.call_on_close(_log_to_stderr(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO))
    if verbose:  # the first thing a bug report needs
        from pipeline.provenance.versions import code_version

        logging.getLogger(__name__).debug(f"{code_version()}, Python {sys.version.split()[0]}")


@cli.command()
@click.argument("aoi", required=False)
@click.option("--all", "all_aois", is_flag=True, help="Every AOI of the registry, in parallel on a Dask cluster.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="With --all: an existing Dask scheduler (tcp://host:port) instead of a local cluster.")
@click.option("--workers", type=_WholeIn(min=1), default=None,
              help="With --all and no --scheduler: local worker processes (default: cores).")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=Path("out"), show_default=True, help="Root of run folders.")
@click.option("--data", "data_root", type=_Folder(), default=Path("data"), show_default=True, help="Where demo scenes are kept.")
@click.option("--scenes", "scenes_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of scenes (Planet, Sentinel-2, Landsat, or plain GeoTIFFs with --bands); default: the AOI's "
                   "catalogue, else the simulated demo.")
@click.option("--bands", default=None, metavar="MAP",
              help="With --scenes: band map of plain GeoTIFFs in file order, e.g. blue,green,red,nir,swir22 (- skips a band).")
@click.option("--acquired", default=None, metavar="ISO", help="With --scenes and --bands: acquisition time (UTC) of a single "
              "GeoTIFF that carries none (a folder's files are dated by their tags, or by their names with --time-from-name).")
@click.option("--time-from-name", is_flag=True,
              help="With --scenes and --bands: date each plain GeoTIFF by the YYYYMMDD in its name; its time of day is then "
                   "unknown, and said so.")
@click.option("--provider", default=None, type=click.Choice(["planet", "sentinel2", "landsat"]),
              help="With --scenes and --bands: who delivered the plain GeoTIFFs (a file does not say), for the figures' imagery "
                   "credit; recorded as declared.")
@click.option("--resolution", "resolution_m", type=_FiniteIn(0.3, 100.0), default=None, metavar="METRES",
              help="Analysis pixel in metres (default: native, the coarsest band the burn index reads: 3 m PlanetScope, "
                   "10 or 20 m Sentinel-2, 30 m Landsat, a GeoTIFF's own pixel).")
@click.option("--kind", default=None, type=click.Choice(["planet", "sentinel2", "landsat", "geotiff"]),
              help="Which sensor's scenes of the catalogue to use when it holds several.")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a parameter (repeatable).")
@click.option("--aoi-dir", type=click.Path(path_type=Path), default=AOI_DIR, show_default=False, help="AOI registry folder (default: aoi/ of the project).")
@click.option("--no-figures", is_flag=True, help="Skip figures (faster batch runs).")
@click.option("--figure-width", default=None, metavar="WIDTH",
              help="Figures laid out for: column (89 mm, default), double (183 mm), slide (254 mm) or a width in mm; "
                   "300 dpi. Same as --set figure_width_mm=MM.")
@click.option("--sign-key", type=click.Path(path_type=Path), default=None, metavar="PATH",
              help="Ed25519 private key (burnscan keygen): sign the manifest into manifest.json.sig.")
@click.option("--recompute", is_flag=True, help="Reuse nothing kept in OUT/.cache from earlier runs of the same scenes "
              "(co-registration shifts, co-registered and normalised scenes, figures, the review page's scenes, GIS rasters): compute and draw everything "
              "again. The outputs are the same.")
def detect(aoi: str | None, all_aois: bool, scheduler: str | None, workers: int | None, out_root: Path, data_root: Path,
           scenes_dir: Path | None, bands: str | None, acquired: str | None, time_from_name: bool, provider: str | None,
           resolution_m: float | None,
           kind: str | None, sets: tuple[str, ...], aoi_dir: Path, no_figures: bool, figure_width: str | None,
           sign_key: Path | None, recompute: bool) -> None:
    """Detect and date burns in AOI (or every AOI with --all) and write out/AOI/RUN-ID/.

    The analysis grid follows the scenes' native pixel unless --resolution says otherwise; the
    report says which grid and why. The manifest's SHA-256 is printed at the end and chained
    into out/AOI/runs.log: keep it to check the run later with burnscan verify.
    """
    from pipeline.errors import ParameterError
    from pipeline.run import run_detect
    from pipeline.sim.demo import demo_scenes  # the demo runs only when no scene is given or registered

    overrides = _with_resolution(_parse_sets(sets), resolution_m)
    if figure_width is not None:
        from pipeline.config import figure_width_mm

        if "figure_width_mm" in overrides:
            raise ParameterError("--figure-width and --set figure_width_mm both set the figure width; give one of them")
        overrides["figure_width_mm"] = str(figure_width_mm(figure_width))  # recorded as an override, like --set
    _check_bands(bands)
    if bands is None and scenes_dir is not None and aoi is not None and not all_aois:
        area = load_aoi(aoi, aoi_dir)  # an AOI file may name the bands of its GeoTIFFs, for detect as for add
        if area.properties.get("band_map") is not None:
            bands = area.properties["band_map"]
            _check_bands(bands, where=f"{area.path or aoi}: property 'band_map'")
    if (bands or acquired or time_from_name or provider) and scenes_dir is None:
        raise ParameterError("--bands, --acquired, --time-from-name and --provider read plain GeoTIFFs given with --scenes PATH; "
                             "add --scenes, or register the files with burnscan add AOI PATH --bands MAP")
    if (acquired or time_from_name or provider) and not bands:
        raise ParameterError("--acquired, --time-from-name and --provider describe plain GeoTIFFs read with --bands; give "
                             "their band map with --bands too")
    if acquired and time_from_name:
        raise ParameterError("--acquired and --time-from-name both give the time; give one of them")
    if all_aois:
        if aoi or scenes_dir:
            raise ParameterError("--all runs every AOI of the registry; drop the AOI name and --scenes")
        _detect_all(list_aois(aoi_dir), scheduler=scheduler, workers=workers, out_root=out_root, data_root=data_root,
                    aoi_dir=aoi_dir, overrides=overrides, make_figures=not no_figures, kind=kind, sign_key=sign_key,
                    demo=demo_scenes, keep_alignment=not recompute, keep_figures=not recompute)
        return
    if aoi is None:
        raise ParameterError("name an AOI (burnscan aois lists them) or pass --all")
    if scheduler or workers:
        raise ParameterError("--scheduler and --workers go with --all; one AOI runs here")

    outcome = run_detect(
        aoi, out_root=out_root, data_root=data_root, overrides=overrides, scenes_dir=scenes_dir, aoi_dir=aoi_dir,
        make_figures=not no_figures, kind=kind, sign_key=sign_key, demo=demo_scenes,
        keep_alignment=not recompute, keep_figures=not recompute,
        scene_options={"bands": bands, "acquired": _acquired_time(acquired), "time_from_name": time_from_name,
                       "provider": provider},
    )
    report = outcome.report
    if report["simulated"]:
        click.echo("SIMULATED DATA: this run used simulated scenes, not evidence about a real place.")
    for reading in report["readings"]:
        click.echo(f"- {reading['statement']}")
    click.echo(report["summary"])
    click.echo(report["grid"]["statement"])
    click.echo(f"manifest sha256: {outcome.manifest_sha256}")
    click.echo(f"outputs: {outcome.run_dir}")


def _check_bands(bands: Any, *, where: str = "--bands") -> None:
    """Refuse a band map that repeats or misspells a name, or names no band, before any file is read."""
    if bands is not None:
        from pipeline.readers.geotiff import band_map

        band_map(bands, where=where)


def _with_resolution(overrides: dict[str, str], resolution_m: float | None) -> dict[str, Any]:
    """``--resolution`` as the ``resolution_m`` override (one value: two that disagree are refused)."""
    if resolution_m is None:
        return overrides
    given = overrides.get("resolution_m")
    if given is not None and given.strip().lower() != f"{resolution_m:g}" and _as_number(given) != resolution_m:
        raise ParameterError(f"--resolution {resolution_m:g} and --set resolution_m={given} disagree; give one of them")
    return {**overrides, "resolution_m": resolution_m}


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _acquired_time(acquired: str | None) -> Any:
    """``--acquired`` as a UTC time, checked as every GeoTIFF time is (not before Landsat 1, not in the future)."""
    from pipeline.readers.rasters import stated_time
    from pipeline.stages.plausibility import implausible_time

    if not acquired:
        return None
    try:
        when = stated_time(acquired)
    except ValueError as exc:
        only_date = ("; if only the date is known, give it in the file's name (YYYYMMDD) and use --time-from-name: the "
                     "report then says the time of day is unknown") if "no time of day" in str(exc) else ""
        raise ParameterError(f"--acquired {acquired!r} {exc}; give the scene's UTC time, e.g. 2024-01-28T10:38:00Z"
                             f"{only_date}") from None
    problem = implausible_time(when, sensor="geotiff")  # the GeoTIFF floor: Landsat 1, July 1972
    if problem:
        raise ParameterError(f"--acquired {acquired!r}: {problem}; give the scene's acquisition time (UTC)")
    return when


def _detect_all(names: list[str], *, scheduler: str | None, workers: int | None, **options) -> None:
    from pipeline.batch import run_many
    from pipeline.errors import BatchError

    outcomes = run_many(names, scheduler=scheduler, workers=workers, **options)
    for o in outcomes:
        sealed = f"\tmanifest sha256: {o.manifest_sha256}" if o.ok else ""
        click.echo(f"{o.aoi}\t{'ok' if o.ok else 'FAILED'}\t{o.run_dir or o.error}{sealed}")
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise BatchError(f"{len(failed)} of {len(outcomes)} AOIs failed ({', '.join(o.aoi for o in failed)}); "
                         "the others completed: fix those AOIs and run them again")


@cli.command()
@click.argument("aoi")
@click.option("--scenes", "scenes_dir", type=click.Path(path_type=Path), default=None,
              help="Scenes covering the search area (default: a SIMULATED search box).")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=Path("out"), show_default=True, help="Root of run folders.")
@click.option("--data", "data_root", type=_Folder(), default=Path("data"), show_default=True,
              help="Where the simulated search box is kept.")
@click.option("--chunk", "chunk_px", type=_WholeIn(*CHUNK_PX_RANGE), default=1024, show_default=True,
              help="Chunk side in pixels (memory grows with it).")
@click.option("--workers", type=_WholeIn(min=1), default=None, help="Threads working on chunks (default: cores).")
@click.option("--cards", "max_cards", type=_WholeIn(min=0), default=12, show_default=True,
              help="Before/after cards for the top clusters.")
@click.option("--box-size", "box_size_m", type=_FiniteIn(*SEARCH_BOX_SIDE_M), default=6000.0, show_default=True,
              help="Side in metres of the SIMULATED search box used without --scenes.")
@click.option("--box-seed", type=int, default=20240127, show_default=True, help="Seed of the SIMULATED search box.")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a parameter (repeatable).")
@click.option("--aoi-dir", type=click.Path(path_type=Path), default=AOI_DIR, show_default=False, help="AOI registry folder.")
def search(aoi: str, scenes_dir: Path | None, out_root: Path, data_root: Path, chunk_px: int, workers: int | None,
           max_cards: int, box_size_m: float, box_seed: int, sets: tuple[str, ...], aoi_dir: Path) -> None:
    """Scan AOI's search_area for burned settlements; clusters ranked, written to out/AOI/search/RUN-ID/."""
    from pipeline.search import lat_lon_text, run_search
    from pipeline.sim.search_box import search_box_scenes

    outcome = run_search(aoi, out_root=out_root, data_root=data_root, scenes_dir=scenes_dir, aoi_dir=aoi_dir,
                         overrides=_parse_sets(sets), chunk_px=chunk_px, workers=workers, max_cards=max_cards,
                         simulated_box=search_box_scenes(box_size_m, box_seed))
    if outcome.simulated:
        click.echo("SIMULATED DATA: this search used simulated scenes, not evidence about a real place.")
    for c in outcome.clusters.head(20).itertuples():
        click.echo(f"{c.rank:3d}  {c.kind:18}  score {c.settlement_score:.2f}  {c.burned_ha:8.2f} ha  "
                   f"{lat_lon_text(c.centre_lat, c.centre_lon)}  first seen {c.first_seen}  "
                   f"(not visible on the clear scene of {c.last_clear_before or 'none'})")
    if len(outcome.clusters) > 20:
        click.echo(f"... {len(outcome.clusters) - 20} more in the run folder")
    if outcome.score is not None:
        s = outcome.score
        click.echo(f"against the simulated truth: every burned village found {s['all_villages_found']}; ranked above every "
                   f"bush or field fire {s['villages_above_fires']}; no unburned village listed {s['no_unburned_village']}; "
                   f"dated right {s['dated_right']} of {len(s['villages'])}")
    click.echo(f"outputs: {outcome.run_dir}")


@cli.command()
@click.argument("aoi")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--data", "data_root", type=_Folder(), default=Path("data"), show_default=True, help="Where AOI data and catalogues live.")
@click.option("--bands", default=None, metavar="MAP",
              help="Band map of plain GeoTIFFs in file order, e.g. blue,green,red,nir,-,swir22 (default: the AOI file's band_map).")
@click.option("--acquired", default=None, metavar="ISO",
              help="Acquisition time (UTC) of a plain GeoTIFF that does not carry one, e.g. 2024-01-28T10:38Z.")
@click.option("--time-from-name", is_flag=True,
              help="Take a plain GeoTIFF's date from the YYYYMMDD in its file name; its time of day is then unknown, and said so.")
@click.option("--provider", default=None, type=click.Choice(["planet", "sentinel2", "landsat"]),
              help="Who delivered a plain GeoTIFF (the file does not say), for the figures' imagery credit; recorded as declared.")
@click.option("--aoi-dir", type=click.Path(path_type=Path), default=AOI_DIR, show_default=False, help="AOI registry folder.")
def add(aoi: str, paths: tuple[Path, ...], data_root: Path, bands: str | None, acquired: str | None, time_from_name: bool,
        provider: str | None, aoi_dir: Path) -> None:
    """Register scenes (folders, zips, STAC items, GeoTIFFs) in the AOI's catalogue.

    A scene's time comes from its product's metadata; a plain GeoTIFF without one needs
    --acquired, or --time-from-name (the date in its name, time of day unknown). Nothing is guessed.
    """
    from pipeline.readers.catalogue import add_scenes

    if acquired and time_from_name:
        raise ParameterError("--acquired and --time-from-name both give the time; give one of them")
    _check_bands(bands)
    when = _acquired_time(acquired)
    area = load_aoi(aoi, aoi_dir)
    if bands is None and area.properties.get("band_map") is not None:  # an AOI file may name the bands of its GeoTIFFs
        bands = area.properties["band_map"]
        _check_bands(bands, where=f"{area.path or aoi}: property 'band_map'")
    for item_id, what in add_scenes(area, list(paths), data_root=data_root, bands=bands, acquired=when,
                                    time_from_name=time_from_name, provider=provider):
        click.echo(f"{what}: {item_id}")
    _say_if_too_few_clear(area, data_root)


def _say_if_too_few_clear(area: Any, data_root: Path) -> None:
    """After ``add``: say at once when the catalogue cannot give a result yet (fewer than two clear scenes)."""
    from pipeline.config import resolve_params
    from pipeline.readers.catalogue import catalogue_entries

    least = resolve_params(area.parameters, None).min_clear_fraction
    clear = [e for e in catalogue_entries(data_root, area.name) if e.clear_fraction >= least]
    if len(clear) < 2:
        click.echo(f"{area.name}: {len(clear)} registered scene(s) with at least {least:.0%} clear ground over the AOI; a run "
                   f"needs two (one before the event, one after): add more with `burnscan add {area.name} PATH`", err=True)


@cli.command("add-buildings")
@click.argument("aoi")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--data", "data_root", type=_Folder(), default=Path("data"), show_default=True)
@click.option("--replace", is_flag=True, help="Replace the AOI's footprint layer (the old one is kept under a dated name).")
@click.option("--layer", default=None, metavar="NAME", help="The footprint layer of a file that holds several (a GeoPackage).")
@click.option("--aoi-dir", type=click.Path(path_type=Path), default=AOI_DIR, show_default=False, help="AOI registry folder.")
def add_buildings_command(aoi: str, path: Path, data_root: Path, replace: bool, layer: str | None, aoi_dir: Path) -> None:
    """Keep building footprints (GeoJSON, GeoPackage) over AOI; runs count burned structures from them."""
    from pipeline.readers.layers import add_buildings

    added = add_buildings(load_aoi(aoi, aoi_dir), path, data_root=data_root, replace=replace, layer=layer)
    click.echo(f"{added.summary}: {added.path} (sha256 {added.sha256[:16]})")


@cli.command("add-fires")
@click.argument("aoi")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--data", "data_root", type=_Folder(), default=Path("data"), show_default=True)
@click.option("--aoi-dir", type=click.Path(path_type=Path), default=AOI_DIR, show_default=False, help="AOI registry folder.")
def add_fires_command(aoi: str, path: Path, data_root: Path, aoi_dir: Path) -> None:
    """Keep an active-fire archive (FIRMS VIIRS or MODIS CSV) for AOI; runs match it to burns."""
    from pipeline.readers.layers import add_fires

    added = add_fires(load_aoi(aoi, aoi_dir), path, data_root=data_root)
    click.echo(f"{added.summary}: {added.path} (sha256 {added.sha256[:16]})")


class _ListByDefault(click.Group):
    """A group whose first argument, when it is no subcommand, is handed to ``list``: ``burnscan scenes AOI``
    lists as it always has, beside ``burnscan scenes show AOI ID`` and ``burnscan scenes remove AOI ID``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["list", *args]
        return super().parse_args(ctx, args)


_DATA_OPTION = click.option("--data", "data_root", type=_Folder(), default=Path("data"), show_default=True,
                            help="Where AOI data and catalogues live.")
_AOI_DIR_OPTION = click.option("--aoi-dir", type=click.Path(path_type=Path), default=AOI_DIR, show_default=False,
                               help="AOI registry folder.")


@cli.group(cls=_ListByDefault)
def scenes() -> None:
    """The AOI's scene catalogue: burnscan scenes AOI lists it; show and remove one scene by its id."""


def _entry_json(entry: Any, tz: str) -> dict[str, Any]:
    from pipeline.outputs.report import format_time

    return {"id": entry.item_id, "kind": entry.kind, "acquired_utc": entry.acquired.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "acquired": format_time(entry.acquired, tz, time_of_day_known=entry.time_of_day_known),
            "time_source": entry.time_source, "time_of_day_known": entry.time_of_day_known, "sensor": entry.sensor,
            "satellite_id": entry.satellite_id, "bands": list(entry.bands), "aoi_data_fraction": entry.data_fraction,
            "aoi_clear_fraction": entry.clear_fraction, "files": entry.files, "sha256": entry.sha256, "source": entry.source,
            "options": entry.options, "footprint": entry.footprint, "added_utc": entry.added_utc}


@scenes.command("list")
@click.argument("aoi")
@click.option("--json", "as_json", is_flag=True, help="One JSON list of every scene and what is known of it, for programs.")
@_DATA_OPTION
@_AOI_DIR_OPTION
def scenes_list(aoi: str, as_json: bool, data_root: Path, aoi_dir: Path) -> None:
    """List the scenes registered for AOI: time (UTC and local), sensor, clear share of the AOI, hash."""
    import json

    from pipeline.readers.catalogue import catalogue_entries
    from pipeline.outputs.report import format_time

    from pipeline.model import mask_among

    area = load_aoi(aoi, aoi_dir)
    entries = catalogue_entries(data_root, area.name)
    tz = area.local_zone
    if as_json:
        click.echo(json.dumps([_entry_json(e, tz) for e in entries], indent=2, ensure_ascii=False))
        return
    if not entries:
        click.echo(f"no scenes registered for {area.name}; add some with: burnscan add {area.name} PATH")
        return
    for e in entries:
        usable = e.clear_fraction / e.data_fraction if e.data_fraction else 0.0
        main = next(iter(e.sha256.values()), "")
        click.echo(f"{e.item_id}\t{format_time(e.acquired, tz, time_of_day_known=e.time_of_day_known)}\t{e.sensor} {e.satellite_id}"
                   f"\tAOI covered {e.data_fraction:.0%}, clear {e.clear_fraction:.0%} (cloud or no data {1 - e.clear_fraction:.0%}, "
                   f"usable {usable:.0%}{_NO_MASK_WORDS if not mask_among(e.files) else ''})\tsha256 {main[:16]}")


_NO_MASK_WORDS = "; no cloud mask delivered: detect screens it against the other scenes"

_TIME_SOURCE_WORDS = {"metadata": "the product's metadata", "acquired-option": "given with --acquired",
                      "file-name": "the date in the file name (--time-from-name)"}


@scenes.command("show")
@click.argument("aoi")
@click.argument("scene_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="The same as JSON, for programs.")
@_DATA_OPTION
@_AOI_DIR_OPTION
def scenes_show(aoi: str, scene_id: str, as_json: bool, data_root: Path, aoi_dir: Path) -> None:
    """Everything the catalogue knows of scene ID: time and its source, sensor, bands, footprint, files and SHA-256."""
    import json

    from shapely.geometry import shape

    from pipeline.model import mask_among
    from pipeline.readers.catalogue import catalogue_entry

    area = load_aoi(aoi, aoi_dir)
    e = catalogue_entry(data_root, area.name, scene_id)
    tz = area.local_zone
    doc = _entry_json(e, tz)
    if as_json:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    lines = [f"scene:       {e.item_id} ({e.kind})",
             f"acquired:    {doc['acquired']}",
             f"time from:   {_TIME_SOURCE_WORDS.get(e.time_source, e.time_source)}"
             + ("" if e.time_of_day_known else "; only the date is known"),
             f"sensor:      {e.sensor} {e.satellite_id}",
             f"bands:       {', '.join(e.bands) or 'not in the metadata (read from the files when loaded)'}",
             f"AOI:         covered {e.data_fraction:.0%}, clear {e.clear_fraction:.0%}" + (_NO_MASK_WORDS if not mask_among(e.files) else "")]
    if e.footprint:
        outline = shape(e.footprint)
        west, south, east, north = outline.bounds
        lines.append(f"footprint:   {outline.geom_type}, lon {west:.5f} to {east:.5f}, lat {south:.5f} to {north:.5f}")
    lines.append(f"added from:  {e.source}" + (f" on {e.added_utc}" if e.added_utc else ""))
    if e.options:
        lines.append("options:     " + ", ".join(f"{k}={v}" for k, v in sorted(e.options.items())))
    lines.append("files:")
    lines += [f"  {role}: {path}\n    sha256 {e.sha256.get(role, 'not recorded')}" for role, path in e.files.items()]
    click.echo("\n".join(lines))


@scenes.command("remove")
@click.argument("aoi")
@click.argument("scene_id", metavar="ID")
@_DATA_OPTION
@_AOI_DIR_OPTION
def scenes_remove(aoi: str, scene_id: str, data_root: Path, aoi_dir: Path) -> None:
    """Take scene ID out of AOI's catalogue; its files stay where they are, unchanged."""
    from pipeline.readers.catalogue import remove_scene

    area = load_aoi(aoi, aoi_dir)
    remove_scene(area, scene_id, data_root=data_root)
    click.echo(f"removed: {scene_id} (its files are kept; burnscan add {area.name} PATH registers it again)")


@cli.command()
@click.argument("aoi")
@click.option("--start", required=True, help="First day (YYYY-MM-DD).")
@click.option("--end", required=True, help="Last day (YYYY-MM-DD).")
@click.option("--api", default=None, help="STAC API URL (default: Earth Search, Element 84).")
@click.option("--max-cloud", type=_FiniteIn(0, 100), default=None, help="Skip items with more scene cloud cover (%) than this.")
@click.option("--data", "data_root", type=_Folder(), default=Path("data"), show_default=True)
@click.option("--aoi-dir", type=click.Path(path_type=Path), default=AOI_DIR, show_default=False, help="AOI registry folder.")
def fetch(aoi: str, start: str, end: str, api: str | None, max_cloud: float | None, data_root: Path, aoi_dir: Path) -> None:
    """Search a STAC API for Sentinel-2 L2A over AOI, copy the AOI window of each scene, register it."""
    from datetime import date
    from urllib.parse import urlsplit

    from pipeline.readers import fetch as fetching
    from pipeline.readers.catalogue import add_scenes
    from pipeline.errors import ParameterError

    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise ParameterError(f"--start {start!r} / --end {end!r}: give days as YYYY-MM-DD") from None
    if first > last:
        raise ParameterError(f"--start {start} is after --end {end}: no day lies between them; swap them")
    if api is not None and urlsplit(api).scheme not in ("http", "https"):
        raise ParameterError(f"--api {api!r}: not an http(s) URL; give a STAC API's address, "
                             f"e.g. {fetching.EARTH_SEARCH}")
    area = load_aoi(aoi, aoi_dir)
    items = fetching.fetch(api or fetching.EARTH_SEARCH, area.geometry, first, last, Path(data_root) / area.name / "sentinel2",
                           max_cloud=max_cloud)
    for item_id, what in add_scenes(area, items, data_root=data_root):
        click.echo(f"{what}: {item_id}")


@cli.command()
@click.argument("aoi")
@click.argument("polygon_id")
@click.option("--confirm", "confirm", is_flag=True, help="Confirm the polygon as a burn.")
@click.option("--reject", "reject", default=None, metavar="REASON", help="Reject the polygon, saying why (e.g. \"cloud shadow\").")
@click.option("--edit", "edit", default=None, type=click.Path(path_type=Path, exists=True), help="GeoJSON of the corrected outline (lon/lat).")
@click.option("--by", "by", required=True, help="Reviewer's name, recorded with the decision.")
@click.option("--run", "run_dir", type=click.Path(path_type=Path), default=None, help="Run the polygon id comes from (default: the latest).")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=Path("out"), show_default=True)
@click.option("--data", "data_root", type=_Folder(), default=Path("data"), show_default=True)
def review(aoi: str, polygon_id: str, confirm: bool, reject: str | None, edit: Path | None, by: str, run_dir: Path | None,
           out_root: Path, data_root: Path) -> None:
    """Record an analyst's decision on POLYGON_ID of AOI; later runs show it on the same polygon.

    The polygon is read from the run's manifest-listed GeoJSON, and only when the run verifies.
    """
    from pipeline.aoi import validate_aoi_name
    from pipeline.errors import OutputError, ParameterError
    from pipeline.outputs.write import latest_run_dir, named_run_dir
    from pipeline.review import read_edited_outline, record_decision, reviews_path, run_polygons

    validate_aoi_name(aoi)
    chosen = [name for name, flag in (("confirmed", confirm), ("rejected", reject is not None), ("edited", edit is not None)) if flag]
    if len(chosen) != 1:
        raise ParameterError("give exactly one of --confirm, --reject REASON or --edit FILE")
    edited = read_edited_outline(edit) if edit is not None else None  # a bad outline is refused before anything is read
    if run_dir is None:
        run_dir = latest_run_dir(Path(out_root) / aoi)  # the link, or the text file where links are impossible
        if run_dir is None:
            raise OutputError(f"{Path(out_root) / aoi / 'latest'}: no finished run of {aoi} to review; run burnscan detect "
                              f"{aoi} first or give --run")
    manifest, polygons = run_polygons(named_run_dir(run_dir), aoi)  # only the manifest's own GeoJSON, once the run verifies
    made = record_decision(reviews_path(data_root, aoi), polygons, polygon_id, decision=chosen[0], by=by,
                           run_id=manifest["run_id"], simulated=manifest["simulated"], reason=reject or "", edited=edited)
    click.echo(f"{made.decision}: {made.polygon_id} by {made.by} at {made.at_utc} (kept in {reviews_path(data_root, aoi)})")


@cli.command()
@click.option("--aoi-dir", type=click.Path(path_type=Path), default=AOI_DIR, show_default=False,
              help="AOI registry folder (default: aoi/ of the project), as given to detect.")
def aois(aoi_dir: Path) -> None:
    """List the AOI registry."""
    if not Path(aoi_dir).is_dir():
        raise AoiError(f"{aoi_dir}: no such AOI folder; give the folder of AOI files with --aoi-dir, as to detect")
    names, broken = list_aois(aoi_dir), []
    for name in names:  # every file is listed, a broken one with why, so that one bad file hides none of the others
        try:
            aoi = load_aoi(name, aoi_dir)
        except AoiError as exc:
            broken.append(name)
            click.echo(f"{name}\tcannot be read: {exc}")
            continue
        flag = " (location uncertain)" if aoi.location_uncertain else ""
        click.echo(f"{name}\t{aoi.display_name}\t{aoi.properties.get('region', '')}{flag}")
    if broken:
        raise AoiError(f"{aoi_dir}: {len(broken)} of {len(names)} AOI file(s) cannot be read ({', '.join(broken)}); "
                       f"each is listed above with what is wrong: fix or remove it")


@cli.command()
@click.option("--aoi", "aoi_name", default="ogota", show_default=True, help="AOI the simulated cases are drawn for.")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=Path("out/bench"), show_default=True)
@click.option("--data", "data_root", type=_Folder(), default=Path("data"), show_default=True)
@click.option("--case", "cases", multiple=True, help="Simulated case(s) to run (default: all).")
@click.option("--no-real", is_flag=True, help="Skip the real fire pairs of ../shared/data/real.")
@click.option("--without-masks", is_flag=True, help="Read the simulated village scenes without their UDM2, as a delivery "
              "whose masks were lost: clouds and shadows are left to burnscan's own screening.")
def bench(aoi_name: str, out_root: Path, data_root: Path, cases: tuple[str, ...], no_real: bool, without_masks: bool) -> None:
    """Score burnscan and the baselines on every simulated and real case."""
    from pipeline.bench.accuracy import SIMULATED_CASES, run_benchmark

    unknown = [c for c in cases if c not in SIMULATED_CASES]
    if unknown:  # before minutes of the cases named first
        raise ParameterError(f"--case {', '.join(unknown)}: no such simulated case; give one of {', '.join(SIMULATED_CASES)}")
    table = run_benchmark(out_root=out_root, data_root=data_root, aoi_name=aoi_name, cases=cases or SIMULATED_CASES,
                          real=not no_real, without_masks=without_masks)
    click.echo(table)
    click.echo(f"written: {out_root}/bench.csv, bench.json, bench.txt")


@cli.command("bench-perf")
@click.option("--size", "sizes", type=_WholeIn(min=256), multiple=True, help="Side of the generated pair in pixels, at least 256 (repeatable; "
              "default 5490 and 10980: a quarter of a Sentinel-2 tile and a whole one).")
@click.option("--repeats", type=_WholeIn(min=1), default=3, show_default=True, help="Runs of each method; medians are printed.")
@click.option("--work", "work_dir", type=click.Path(path_type=Path), default=Path("out/bench-perf"), show_default=True,
              help="Where the generated pair is written (and removed after).")
@click.option("--profile", is_flag=True, help="Instead: time each stage (wall, CPU, bytes read and written) of one pipeline "
              "run per size and of a warm `burnscan detect ogota`; written to bench_profile.json.")
@click.option("--village/--no-village", default=True, show_default=True, help="Also time a warm `burnscan detect ogota` "
              "on its SIMULATED demo, as it comes and with --recompute.")
@click.option("--village-only", is_flag=True, help="Time only the village, not the generated pairs.")
@click.option("--data", "data_root", type=_Folder(), default=Path("data"), show_default=True,
              help="Where the village's demo scenes are (made there if missing).")
def bench_perf(sizes: tuple[int, ...], repeats: int, work_dir: Path, profile: bool, village: bool, village_only: bool,
               data_root: Path) -> None:
    """Time the pipeline against the decode floor and a naive method on generated tile-sized pairs, and the village."""
    from pipeline.bench.perf import perf_lines, profile_lines, run_perf, run_profile, run_village
    from pipeline.outputs.write import write_json

    work_dir.mkdir(parents=True, exist_ok=True)
    if profile:
        found = run_profile(work_dir, list(sizes) or [5490, 10980])
        for line in profile_lines(found):
            click.echo(line)
        write_json(work_dir / "bench_profile.json", {"rows": found}, root=work_dir)
        click.echo(f"written: {work_dir / 'bench_profile.json'}")
        return
    rows = [] if village_only else run_perf(work_dir, list(sizes) or [5490, 10980], repeats=repeats)
    if village or village_only:
        rows += run_village(work_dir, data_root=data_root, repeats=repeats)
    for line in perf_lines(rows):
        click.echo(line)
    write_json(work_dir / "bench_perf.json", {"rows": rows}, root=work_dir)
    click.echo(f"written: {work_dir / 'bench_perf.json'}")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--key", "public_key", type=click.Path(path_type=Path), default=None, metavar="PUB",
              help="Public key (PATH.pub from burnscan keygen): the run must carry a signature it verifies.")
@click.option("--inputs", "inputs_dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Folder the run's inputs were moved or copied to: inputs not at their recorded paths are found here by SHA-256.")
@click.option("--log", "run_log", type=click.Path(path_type=Path), default=None, metavar="RUNS_LOG",
              help="The AOI's runs.log, when the run folder was copied without it (default: out/AOI/runs.log beside the run).")
def verify(run_dir: Path, public_key: Path | None, inputs_dir: Path | None, run_log: Path | None) -> None:
    """Check RUN_DIR against its manifest, inputs, parameters, run log and (with --key) signature.

    One line per problem: files unlisted, missing or changed, the AOI file or an input
    missing or changed, parameters that no longer resolve to the recorded values, report.json
    disagreeing with the manifest, the run log's chain or entry, the signature.
    """
    from pipeline.errors import IntegrityError
    from pipeline.outputs.write import named_run_dir
    from pipeline.provenance.verify import check_run

    run_dir = named_run_dir(run_dir)  # out/AOI/latest, a link or a text file, names a run
    check = check_run(run_dir, public_key=public_key, inputs_dir=inputs_dir, run_log=run_log)
    for note in check.notes:
        click.echo(f"note: {note}")
    for line in check.problems:
        click.echo(line)
    click.echo(f"manifest sha256: {check.manifest_sha256}")
    if check.problems:
        raise IntegrityError(f"{run_dir}: {len(check.problems)} problem(s): the run does not match its manifest, inputs, "
                             f"run log{' or signature' if public_key else ''}; see the lines above")
    signed = f", and the signature checks with {public_key}" if public_key else ""
    click.echo(f"{run_dir}: verified: every file of the run folder, the AOI file and every input match their SHA-256 in "
               f"manifest.json, the parameters resolve to the recorded values, and the manifest is the one the run log "
               f"recorded{signed}")


@cli.command()
@click.option("--out", "out_path", type=click.Path(path_type=Path), required=True, metavar="PATH",
              help="Where to write the private key; the public key goes to PATH.pub. Neither is overwritten.")
def keygen(out_path: Path) -> None:
    """Make an Ed25519 key pair to sign runs: private key PATH (mode 0600), public key PATH.pub."""
    from pipeline.provenance.signing import generate_keypair

    private, public, fingerprint = generate_keypair(out_path)
    click.echo(f"private key: {private} (keep it off the evidence machines; sign with --sign-key {private})")
    click.echo(f"public key: {public} (give it to whoever checks runs: burnscan verify RUN_DIR --key {public})")
    click.echo(f"fingerprint: {fingerprint}")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--key", "key_path", type=click.Path(path_type=Path), required=True, metavar="PATH",
              help="Ed25519 private key (burnscan keygen).")
def sign(run_dir: Path, key_path: Path) -> None:
    """Sign the manifest of a finished run that verifies, into RUN_DIR/manifest.json.sig."""
    from pipeline.provenance.verify import sign_run

    from pipeline.outputs.write import named_run_dir

    target, fingerprint = sign_run(named_run_dir(run_dir), key_path)
    click.echo(f"signed: {target} (key fingerprint {fingerprint})")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=None,
              help="Root for the new run folder (default: beside RUN_DIR).")
@click.option("--inputs", "inputs_dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Folder the run's inputs were moved or copied to: inputs not at their recorded paths are found here by SHA-256.")
def rerun(run_dir: Path, out_root: Path | None, inputs_dir: Path | None) -> None:
    """Re-run RUN_DIR from its manifest into a new folder and say which outputs came out identical."""
    from pipeline.rerun import rerun as rerun_from_manifest

    result = rerun_from_manifest(run_dir, out_root=out_root, inputs_dir=inputs_dir)
    click.echo(f"re-ran {result.original} as {result.other}")
    for comparison in result.outputs:
        click.echo(comparison.line())
    for note in result.notes:
        click.echo(f"note: {note}")
    if not result.identical:
        raise PipelineError(
            f"{result.other}: {len(result.differing)} of {len(result.outputs)} compared outputs differ from {result.original}; see the lines above"
        )
    click.echo(f"{result.other}: every compared output is identical to {result.original}")


@cli.command()
@click.argument("run")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=Path("out"), show_default=True,
              help="Where the runs of an AOI named as RUN are.")
@click.option("--no-open", is_flag=True, help="Print the page's path instead of opening it.")
def view(run: str, out_root: Path, no_open: bool) -> None:
    """Open RUN's offline review page (review.html) in the default browser.

    RUN is a run folder, an AOI's out/AOI/latest, or an AOI name (its latest run under --out).
    The page needs no network: scenes, outlines, script and style are all inside it.
    """
    import os
    import webbrowser

    from pipeline.outputs.review_page import find_review_page
    from pipeline.provenance.manifest import load_manifest
    from pipeline.readers.runs import listed_bytes

    page = find_review_page(run, out_root=out_root).resolve()
    listed_bytes(page.parent, load_manifest(page.parent)[1], page.name)  # only the page the run wrote, never an edited one
    # A console browser (lynx, w3m) is all webbrowser finds on a machine without a display: it cannot
    # show the page, so the path is printed instead, to open in any browser or copy elsewhere.
    graphical = sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if not no_open and graphical and webbrowser.open(page.as_uri()):
        click.echo(f"opened {page}")
        return
    reason = "" if no_open else " (no browser to open it here: open it in any browser; it needs no network)"
    click.echo(f"{page}{reason}")


_INTERNAL_ERROR_EXIT = 70  # EX_SOFTWARE: a defect of burnscan, not of the input
_OUT_OF_MEMORY_EXIT = 71


def _error_log_dir() -> Path:
    """Where tracebacks of unexpected errors go: ``$BURNSCAN_LOG_DIR``, else the user's state folder."""
    import os

    configured = os.environ.get("BURNSCAN_LOG_DIR")
    if configured:
        return Path(configured)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "burnscan" / "logs"


def _write_error_log(exc: BaseException, argv: list[str]) -> Path | None:
    """Write the traceback of an unexpected error to a new private file; None if nowhere is writable.

    The file holds the command line and the chained traceback, for a bug report; it is created
    exclusively (never overwrites another log) and readable by its owner only, since paths and AOI
    names in it can tell what an investigator was looking at.
    """
    import os
    import tempfile
    import traceback
    from datetime import datetime, timezone

    from pipeline.provenance.versions import code_version

    try:
        version = code_version()
    except Exception:  # the log must be written even when the environment is what broke
        version = "burnscan (version unknown)"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    text = (f"burnscan {' '.join(argv)}\n{version}\n\n"
            + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    for folder in (_error_log_dir(), Path(tempfile.gettempdir()) / f"burnscan-logs-{os.getuid()}"):
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = folder / f"error-{stamp}-{os.getpid()}.log"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            return path
        except OSError:
            continue
    return None


def _one_line(text: str, limit: int = 300) -> str:
    """A library message on one line, cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """A library's warning as one ``burnscan: warning:`` line (Python's own display adds the source line)."""
    click.echo(f"burnscan: warning: {_one_line(message)}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: return an exit code instead of raising; never print a traceback.

    Expected errors (:class:`PipelineError`) are one line naming the file, the problem and the fix.
    Anything else is a defect or a resource exhausted: one line too, pointing to a log file that
    holds the traceback. A warning that still reaches the user is one line too; set here only, and
    put back on return, so a notebook importing the library keeps Python's own display.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    shown_by, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        return _main(args)
    finally:
        warnings.showwarning = shown_by


def _interrupted(exc: KeyboardInterrupt) -> str:
    """The line a Ctrl-C leaves: what is kept, and the unfinished run's folder when one was started."""
    partial = getattr(exc, "partial_run", None)
    where = f"the unfinished run stays in {partial}" if partial else "an unfinished run stays in its .partial folder"
    return f"burnscan: interrupted; outputs already complete are kept, {where}"


def _main(args: list[str]) -> int:
    """:func:`main` once the warnings are shown on one line."""
    try:
        cli.main(args=args, prog_name="burnscan", standalone_mode=False)
    except PipelineError as exc:
        # A run stopped by a defect or by memory keeps its cause chained: its traceback goes to the log.
        log = _write_error_log(exc, args) if isinstance(exc, RunError) and exc.__cause__ is not None else None
        click.echo(f"burnscan: error: {exc}" + (f" (traceback in {log})" if log else ""), err=True)
        return exc.exit_code
    except click.exceptions.Abort as exc:  # click's form of Ctrl-C (or of end of input at a prompt)
        if isinstance(exc.__context__, KeyboardInterrupt):
            click.echo(_interrupted(exc.__context__), err=True)
        else:
            click.echo("burnscan: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt as exc:
        click.echo(_interrupted(exc), err=True)
        return 130
    except MemoryError as exc:
        log = _write_error_log(exc, args)
        click.echo("burnscan: error: ran out of memory; draw a tighter AOI, raise resolution_m (--resolution 10), "
                   "or scan wide areas chunk by chunk with burnscan search"
                   + (f" (traceback in {log})" if log else ""), err=True)
        return _OUT_OF_MEMORY_EXIT
    except Exception as exc:  # the last line of defence: a defect, said in one line with its traceback kept
        log = _write_error_log(exc, args)
        where = f"traceback in {log}" if log else "no log file could be written"
        click.echo(f"burnscan: internal error: {type(exc).__name__}: {_one_line(exc)} ({where}); "
                   f"this is a defect of burnscan: please report it with that file", err=True)
        return _INTERNAL_ERROR_EXIT
    return 0


def command() -> NoReturn:
    """The ``burnscan`` command: :func:`main`, then out of the process at once, with its exit code.

    By the time :func:`main` returns, every output is written and closed (atomically, fsynced where
    it must be). Python's own teardown would then free a run's arrays and modules one by one: 0.4 s
    of a warm village run, for nothing. The streams and logs are flushed first.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away (burnscan ... | head), or a closed stream
            pass
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    command()
