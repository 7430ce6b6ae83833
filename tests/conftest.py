"""Shared fixtures: the tiny synthetic env every env-level test uses (one pre-training cache for the whole
session, so its starting networks are trained once), and where the real CamVid copy lives (tests that
need it skip cleanly without it)."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from segal_env.runtime import torch_threads

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def benchmark_script(name: str) -> Iterator[ModuleType]:
    """benchmarks/<name>.py imported as a module, with its folder on sys.path while in use (the scripts import
    their neighbours, as they do when run from the command line)."""
    folder = str(REPO / "benchmarks")
    sys.path.insert(0, folder)
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(folder)


# 40 synthetic images of 96x128 (16 regions each), 4 pools x 3 candidates, 4 steps, one pre-training epoch
TINY_SYNTHETIC = {
    "dataset_kwargs": {"n_train": 40, "n_val": 8, "n_test": 8},
    "role_sizes": {"d_s": 2, "d_t": 12},
    "num_pools": 4,
    "pool_size": 3,
    "budget": 16,
    "pretrain_steps": 2,
    "final_steps": 2,
    "mc_samples": 2,
    "batch_size": 4,
}


@pytest.fixture
def one_torch_thread():
    """Two busy cores make torch's 2-thread BatchNorm ~40x slower; one thread keeps tests fast."""
    with torch_threads():
        yield


@pytest.fixture(scope="session")
def segal_cache(tmp_path_factory) -> Path:
    """One checkpoint cache for the session: every test module reuses the same starting networks."""
    return tmp_path_factory.mktemp("segal_cache")


@pytest.fixture
def tiny_kwargs(segal_cache) -> dict:
    """Env kwargs of the tiny synthetic configuration, with the shared cache."""
    return {**TINY_SYNTHETIC, "cache_dir": str(segal_cache)}


FAKE_CLASSES = ["road", "pole"]


def fake_record(policy: str, source: str, seed: int, mious: list[float], pixels: list[list[int]]) -> dict:
    """A complete benchmark run record made by hand (budgets 10, 20, 30; classes road and pole), for tests of
    what reads benchmark folders."""
    from experiments.benchmark.runner import SCHEMA_VERSION

    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "segal-benchmark-run",
        "run_id": f"{policy}__seed{seed}",
        "env_id": "SegAL-Synthetic-v0",
        "env_kwargs": {},
        "policy": policy,
        "policy_source": source,
        "seed": seed,
        "budgets": [10, 20, 30],
        "final_training": False,
        "class_names": FAKE_CLASSES,
        "num_pools": 10,
        "wall_time_s": 1.0,
        "entries": [
            {
                "budget": b,
                "test_miou": m,
                "test_per_class_iou": [m + 0.1, m - 0.1],
                "reward_set_miou": m + 0.05,
                "labeled_pixels_per_class": px,
            }
            for b, m, px in zip([10, 20, 30], mious, pixels)
        ],
    }


def as_cli(kwargs: dict, exclude: tuple[str, ...] = ()) -> list[str]:
    """Env kwargs as the ``key=value`` words of train.py's and evaluate.py's --env-kwargs (JSON values)."""
    return [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in kwargs.items() if k not in exclude]


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
