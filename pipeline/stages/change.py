"""Difference each scene with the last clear observation of the same pixel.

Investigators read imagery date by date: a burn is "new on T1" when it was not there on
the last scene where that ground was actually seen. A pixel under cloud on one date is
therefore skipped, not compared: its next difference is taken against the last date it
was clear, and that date is kept so the report can state the bracket honestly.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["consecutive_change"]


def consecutive_change(index: xr.DataArray, clear: xr.DataArray) -> xr.Dataset:
    """Oriented change of ``index`` between each scene and each pixel's last clear scene.

    Parameters
    ----------
    index:
        ``(time, y, x)`` burn index with attr ``burn_direction`` (+1 or -1).
    clear:
        ``(time, y, x)`` True where the ground was observed.

    Returns
    -------
    xarray.Dataset
        ``delta`` (time, y, x) float32: change oriented so that positive means "more
        burned", NaN where the pixel is not observed at that time or was never observed
        before it; ``last_clear`` (time, y, x) int16: index of the scene the change was
        taken against, -1 where there is none.

    Examples
    --------
    >>> idx = xr.DataArray(np.array([[[0.3]], [[0.3]], [[0.05]]], np.float32), dims=("time", "y", "x"),
    ...                    attrs={"burn_direction": -1})
    >>> clr = xr.DataArray(np.array([[[True]], [[False]], [[True]]]), dims=("time", "y", "x"))
    >>> out = consecutive_change(idx, clr)
    >>> float(out.delta[2, 0, 0].round(2)), int(out.last_clear[2, 0, 0])
    (0.25, 0)
    """
    direction = int(index.attrs.get("burn_direction", -1))
    values = index.values
    observed = clear.values & np.isfinite(values)
    delta = np.full(values.shape, np.nan, dtype=np.float32)
    last_clear = np.full(values.shape, -1, dtype=np.int16)
    last_value = np.full(values.shape[1:], np.nan, dtype=np.float32)
    last_index = np.full(values.shape[1:], -1, dtype=np.int16)
    for t in range(values.shape[0]):
        seen = observed[t]
        comparable = seen & (last_index >= 0)
        delta[t][comparable] = direction * (values[t][comparable] - last_value[comparable])
        last_clear[t] = last_index
        last_value[seen] = values[t][seen]
        last_index[seen] = t
    coords = {k: v for k, v in index.coords.items() if set(v.dims) <= set(index.dims)}
    return xr.Dataset(
        {
            "delta": (index.dims, delta, {"index": index.attrs.get("index", index.name), "orientation": "positive = more burned"}),
            "last_clear": (index.dims, last_clear),
        },
        coords=coords,
        attrs=dict(index.attrs),
    )
