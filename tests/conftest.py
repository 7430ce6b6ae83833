"""Shared fixtures: where the real CamVid copy lives (tests that need it skip cleanly without it)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    """$SEGAL_CAMVID_ROOT, else <repo>/../shared/data/camvid; skip when neither holds CamVid."""
    root = Path(os.environ.get("SEGAL_CAMVID_ROOT") or REPO.parent / "shared" / "data" / "camvid")
    if not (root / "train").is_dir() or not (root / "trainannot").is_dir():
        pytest.skip(
            f"CamVid not found at {root} (needs train/ and trainannot/); "
            "set SEGAL_CAMVID_ROOT to a SegNet-layout CamVid copy to run these tests"
        )
    return root


def pytest_configure(config: pytest.Config) -> None:
    # pytest re-enables DeprecationWarnings per test; torchvision 0.29 warns once per decoded file
    config.addinivalue_line("filterwarnings", "ignore:The image decoding and encoding capabilities:DeprecationWarning")
