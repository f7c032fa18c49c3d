"""Co-registered, normalised scenes kept between runs, so that a re-run of the same scenes does not align them again.

After the search for shifts (kept by :mod:`pipeline.outputs.shift_cache`), what a warm village
run spends most on before any burn is read is moving every scene onto the reference and fitting
each band's gain and offset: a few seconds, for the same numbers as the last run. Both depend
only on the usable scenes' pixels, the parameters, the grids and the code, so the stack that
comes out of them, with its shifts and band fits, is kept in a :class:`FigureCache` store
under a :func:`pipeline.outputs.figure_cache.content_key` of exactly those (the code through
the store's version of burnscan's source and libraries).

Nothing is trusted blindly: the store hands back an entry only when every file hashes to the
SHA-256 its entry lists; the arrays are read without pickle, each against the name, dims and
shape the entry gives; the shifts and fits must have their fields, of their types, finite.
Anything else is made again. A stack larger than one kept file may be is not kept.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import numpy as np
import xarray as xr

from pipeline.outputs.figure_cache import MAX_FILE_BYTES, FigureCache
from pipeline.outputs.shift_cache import checked_record
from pipeline.stages.coregister import ShiftEstimate
from pipeline.stages.normalise import BandFit

__all__ = ["Aligned", "keep_aligned", "kept_aligned"]

logger = logging.getLogger(__name__)

Aligned = tuple[xr.Dataset, list[ShiftEstimate], list[list[BandFit]]]
"""The normalised stack, each usable scene's shift, and each scene's band fits."""


def keep_aligned(store: FigureCache, key: str, aligned: Aligned) -> None:
    """Keep ``aligned`` under ``key``; a stack that cannot be written as plain arrays and JSON is not kept."""
    stack, shifts, fits = aligned
    try:
        files, variables = _arrays(stack)
        meta = {"variables": variables, "data_vars": list(stack.data_vars), "attrs": _plain(stack.attrs),
                "shifts": [s.as_dict() for s in shifts], "fits": [[f.as_dict() for f in row] for row in fits]}
        json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        logger.debug(f"the aligned scenes are not kept ({exc})")
        return
    store.put_files(key, files, meta)


def kept_aligned(store: FigureCache, key: str) -> Aligned | None:
    """The stack, shifts and fits kept under ``key``, each checked; ``None`` when there are none that check."""
    found = store.get_entry(key)
    if found is None:
        return None
    files, meta = found
    try:
        stack = _stack(files, meta)
        shifts = [checked_record(ShiftEstimate, s) for s in meta["shifts"]]
        fits = [[checked_record(BandFit, f) for f in row] for row in meta["fits"]]
        if len(shifts) != stack.sizes.get("time") or len(fits) != len(shifts):
            raise ValueError("shifts and fits do not match the scenes")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        logger.info(f"kept aligned scenes {key[:12]} do not check ({exc}); the scenes are aligned again")
        return None
    return stack, shifts, fits


def _arrays(stack: xr.Dataset) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    """Each variable (data and coordinates, in order) as ``.npy`` bytes, and what names it."""
    if list(stack.variables) != list(stack.data_vars) + list(stack.coords):  # a Dataset is rebuilt in that order
        raise TypeError("coordinates before data variables")
    files: dict[str, bytes] = {}
    variables = []
    for i, (name, variable) in enumerate(stack.variables.items()):
        values = np.asarray(variable.values)
        if values.dtype.hasobject or variable.attrs:
            raise TypeError(f"variable {name} holds objects or attributes")
        if values.nbytes > MAX_FILE_BYTES:
            raise ValueError(f"variable {name} is {values.nbytes} bytes, more than a kept file may be")
        buffer = io.BytesIO()
        np.save(buffer, values, allow_pickle=False)
        files[f"v{i}.npy"] = buffer.getvalue()
        variables.append({"name": str(name), "dims": [str(d) for d in variable.dims], "shape": list(values.shape),
                          "dtype": values.dtype.str, "file": f"v{i}.npy"})
    return files, variables


def _stack(files: dict[str, bytes], meta: dict[str, Any]) -> xr.Dataset:
    """The Dataset of :func:`_arrays`' files: the same variables, in the same order, with the same attributes."""
    variables = {}
    for v in meta["variables"]:
        values = np.load(io.BytesIO(files[v["file"]]), allow_pickle=False)
        if list(values.shape) != v["shape"] or values.dtype.str != v["dtype"] or len(v["dims"]) != values.ndim:
            raise ValueError(f"{v['file']} is not the array its entry names")
        variables[v["name"]] = xr.Variable(tuple(v["dims"]), values)
    if set(files) != {v["file"] for v in meta["variables"]}:
        raise ValueError("files the entry does not name")
    data_vars = {name: variables[name] for name in meta["data_vars"]}
    coords = {name: var for name, var in variables.items() if name not in data_vars}
    stack = xr.Dataset(data_vars, coords=coords, attrs=meta["attrs"])
    if list(stack.variables) != [v["name"] for v in meta["variables"]]:  # the order the figures' keys walk them in
        raise ValueError("the variables come back in another order")
    return stack


def _plain(attrs: dict[str, Any]) -> dict[str, Any]:
    """``attrs`` when JSON gives them back equal (strings, numbers, lists of them); else TypeError."""
    if json.loads(json.dumps(attrs)) != attrs:
        raise TypeError("attributes that JSON does not give back")
    return dict(attrs)
