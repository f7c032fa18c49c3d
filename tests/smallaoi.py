"""A small test AOI (1.2 km square near Ogota), written to a temporary registry folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

AOI_NAME = "testvillage"
LAT, LON, HALF_M = 13.82, -3.78, 600.0  # a 1.2 km square: the smallest AOI the demo draws a village in


def write_small_aoi(folder: Path) -> Path:
    """Write ``<folder>/testvillage.geojson`` and return ``folder`` (for ``aoi_dir``)."""
    dlat = HALF_M / 111_320.0
    dlon = HALF_M / (111_320.0 * math.cos(math.radians(LAT)))
    ring = [[LON - dlon, LAT - dlat], [LON + dlon, LAT - dlat], [LON + dlon, LAT + dlat], [LON - dlon, LAT + dlat], [LON - dlon, LAT - dlat]]
    feature = {
        "type": "Feature",
        "properties": {"display_name": "Test village", "timezone": "Africa/Bamako", "location_confidence": "test",
                       "location_source": "made up for the test", "simulated_demo": True},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{AOI_NAME}.geojson").write_text(json.dumps(feature), encoding="utf-8")
    return folder
