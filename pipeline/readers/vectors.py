"""Vector inputs: an AOI's drawn outline (settlement) and building footprint layers.

Read with geopandas and reprojected to the analysis grid's CRS; errors are one line
naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from shapely.geometry import box

from pipeline.errors import SceneError
from pipeline.readers.rasters import check_regular_file, short

__all__ = ["read_outline", "read_footprints", "named_simulated"]


def read_outline(path: Path, crs: str):
    """Union of the polygons of a vector file (GeoJSON, GeoPackage...), in ``crs``."""
    import geopandas as gpd

    check_regular_file(path)
    try:
        layer = _one_layer(path, None, "export the outline layer alone (ogr2ogr outline.geojson FILE LAYER)")
        frame = gpd.read_file(path, engine="pyogrio", layer=layer)
    except SceneError:
        raise
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise SceneError(f"{path}: cannot be read as a vector file ({short(exc)}); give a GeoJSON of the settlement outline") from None
    _check_has_geometry(frame, path, "a GeoJSON of the settlement outline")
    if frame.crs is None:
        raise SceneError(f"{path}: outline has no CRS; save it as GeoJSON (lon/lat) or with its CRS")
    return frame.to_crs(crs).geometry.union_all()


def named_simulated(path: Path) -> bool:
    """Whether a layer's file name says it is simulated (burnscan's simulator writes ``*_SIMULATED.*``): such a
    layer is no evidence about a real place, whatever the scenes it is read with."""
    return "simulated" in Path(path).name.lower()


def read_footprints(path: Path, crs: str, *, bounds: tuple[float, float, float, float] | None = None,
                    layer: str | None = None):
    """Building footprints of a vector file (GeoJSON, GeoPackage), polygons only, in ``crs``.

    Keeps an identifier the user can trace back (``structure_id``, ``osm_id``, ``id``... in
    that order of preference, else the row number) as ``structure_id``; points and lines
    are dropped and counted in ``attrs["dropped"]``; invalid outlines are repaired and their
    ids listed in ``attrs["repaired"]``; ``bounds`` (in ``crs``) keeps only the footprints
    that touch them. A file of several layers needs ``layer``: the first is not guessed.
    ``attrs["simulated"]``: the file's name or a ``simulated`` attribute of its features says it is simulated.
    """
    import geopandas as gpd

    path = Path(path)
    check_regular_file(path)
    try:
        layer = _one_layer(path, layer, "choose the footprint layer with --layer NAME")
        frame = gpd.read_file(path, engine="pyogrio", layer=layer)
    except SceneError:
        raise
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise SceneError(f"{path}: cannot be read as building footprints ({short(exc)}); "
                         "give a GeoJSON or GeoPackage of building polygons") from None
    _check_has_geometry(frame, path, "a GeoJSON or GeoPackage of building polygons")
    if frame.crs is None:
        raise SceneError(f"{path}: footprints have no CRS; save them as GeoJSON (lon/lat) or with their CRS")
    if len(frame) > _MAX_FOOTPRINTS:
        raise SceneError(f"{path}: {len(frame)} footprints is more than {_MAX_FOOTPRINTS}; clip the layer to the AOI first")
    # An id column left empty (every value null) names nothing: the next one, or the row number, is the id.
    id_column = next((c for c in _FOOTPRINT_ID_COLUMNS if c in frame.columns and frame[c].notna().any()), None)
    rows = pd.Series([str(i) for i in range(len(frame))], index=frame.index)
    ids = frame[id_column].astype(str).where(frame[id_column].notna(), "row " + rows) if id_column else rows
    polygonal = frame.geometry.notna() & frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
    if len(frame) and not polygonal.any():
        kinds = ", ".join(sorted(frame.geometry.dropna().geom_type.unique())) or "no geometry"
        raise SceneError(f"{path}: {len(frame)} feature(s), none a polygon ({kinds}); footprints are building outlines "
                         f"(polygons, as Open Buildings or OpenStreetMap give them), not points or lines")
    # Third-party layers (OpenStreetMap above all) hold self-intersecting outlines, a bow tie drawn with two
    # corners swapped: the building is real, so it is repaired, not refused, and the count said. The "structure"
    # method keeps the area the rings enclose and polygons only ("linework" can leave lines in a collection).
    shapes = frame.geometry[polygonal]
    invalid = ~shapes.is_valid
    # Outlines in another CRS than the file states (metres read as degrees) project to infinities: no building
    # there, and no numpy warning on the way (the refusal that follows says what to check).
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        out = gpd.GeoDataFrame({"structure_id": ids[polygonal].to_numpy(), "_repaired": invalid.to_numpy()},
                               geometry=shapes.make_valid(method="structure", keep_collapsed=False).to_numpy(),
                               crs=frame.crs).to_crs(crs)
        finite = np.isfinite(out.geometry.bounds.to_numpy()).all(axis=1) if len(out) else np.zeros(0, bool)
        out = out[finite & ~out.geometry.is_empty.to_numpy() & (out.geometry.area.to_numpy() > 0)]
    if bounds is not None:
        out = out[out.intersects(box(*bounds))]
    repaired = out.pop("_repaired")
    out = out.reset_index(drop=True)
    out.attrs["dropped"] = int((~polygonal).sum())
    out.attrs["repaired"] = sorted(out["structure_id"][repaired.to_numpy()])
    marked = "simulated" in frame.columns and frame["simulated"].fillna(False).astype(bool).any()
    out.attrs["simulated"] = bool(named_simulated(path) or marked)
    if out["structure_id"].duplicated().any():
        raise SceneError(f"{path}: footprint ids in column {id_column!r} repeat; give each building its own id")
    return out


def _one_layer(path: Path, layer: str | None, fix: str) -> str | None:
    """The layer to read: ``layer`` if the file holds it, the only one, or a refusal naming them (never the first of several)."""
    import pyogrio

    names = [str(name) for name in pyogrio.list_layers(path)[:, 0]]
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    if layer is not None:
        if layer not in names:
            raise SceneError(f"{path}: no layer {layer!r} in the file (layers: {shown}); give one of them")
        return layer
    if len(names) > 1:
        raise SceneError(f"{path}: holds {len(names)} layers ({shown}); {fix}")
    return None


def _check_has_geometry(frame, path: Path, wanted: str) -> None:
    """A file read as a table (a CSV, a spreadsheet export) has rows but no shapes: refused, naming what is wanted."""
    import geopandas as gpd

    if not isinstance(frame, gpd.GeoDataFrame) or "geometry" not in frame.columns:
        raise SceneError(f"{path}: a table without geometry (columns: {', '.join(map(str, frame.columns[:8])) or 'none'}); "
                         f"give {wanted}")


_FOOTPRINT_ID_COLUMNS = ("structure_id", "building_id", "osm_id", "id", "full_plus_code")


_MAX_FOOTPRINTS = 2_000_000  # a whole country's layer: clip it to the search area first
