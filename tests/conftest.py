"""Shared pytest fixtures."""

import os
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data_dir():
    """The read-only real data folder (``SIAMESE_TF_DATA_DIR``, default ../shared/data); skips when missing."""
    path = Path(os.environ.get("SIAMESE_TF_DATA_DIR", REPOSITORY_ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"real data folder {path} not found (set SIAMESE_TF_DATA_DIR)")
    return path
