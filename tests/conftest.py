"""Shared fixtures: where the shared real data lives, and a non-interactive plotting backend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``, or skip where this checkout has none beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present: real-data tests need ../shared/data beside the project")
    return SHARED_DATA
