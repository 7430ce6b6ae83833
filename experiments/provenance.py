"""What produced a record: segal's own version, Python, torch and the device, in one place.

Training (``config.json``) and the benchmark (every ``runs/*.json``) stamp the same dict, so two results can
be told apart by the software that made them. segal's version comes from ``segal_env.__version__``, the one
version source of the package (pyproject.toml reads it too), not from the package metadata: the
distribution is called ``segal-rl`` and an unrelated ``segal`` may be installed beside it.
"""

from __future__ import annotations

import platform
from typing import Any

import torch

import segal_env


def provenance(device: Any = None) -> dict[str, Any]:
    """``{"segal", "python", "torch", "device"}``; ``device`` is the torch device the run used (None when unknown)."""
    return {
        "segal": segal_env.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": None if device is None else str(device),
    }
