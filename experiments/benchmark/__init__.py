"""Benchmark labelling policies in a SegAL environment's test mode (``python evaluate.py``).

- :mod:`experiments.benchmark.protocol`: presets (paper budgets, CPU scale, --quick) -> a config (with the
  test-mode ``EnvConfig`` resolved once) and run specs;
- :mod:`experiments.benchmark.runner`: one (policy, seed) episode -> a JSON result record per budget;
- :mod:`experiments.benchmark.backends`: where runs execute (serial, process pool, Ray);
- :mod:`experiments.benchmark.manifest`: the output folder, and which stored runs a resumed benchmark keeps
  (the ``env_settings`` fingerprints);
- :mod:`experiments.benchmark.aggregate`: mean/std tables, per-class results, labels-to-target savings;
- :mod:`experiments.benchmark.plots`: PNG figures; :mod:`experiments.benchmark.cli`: the command line.

See docs/benchmark.md.
"""

from experiments.benchmark.aggregate import load_results, summarize
from experiments.benchmark.backends import ProcessBackend, RayBackend, SerialBackend, make_backend
from experiments.benchmark.runner import SCHEMA_VERSION, RunSpec, run_episode
from experiments.benchmark.statistics import regions_to_reach, saving_percent

__all__ = [
    "SCHEMA_VERSION",
    "ProcessBackend",
    "RayBackend",
    "RunSpec",
    "SerialBackend",
    "load_results",
    "make_backend",
    "regions_to_reach",
    "run_episode",
    "saving_percent",
    "summarize",
]
