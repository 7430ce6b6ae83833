"""Benchmark labelling policies in a SegAL environment's test mode (``python evaluate.py``).

- :mod:`agents.benchmark.runner`: one (policy, seed) episode -> a JSON result record per budget;
- :mod:`agents.benchmark.backends`: where runs execute (serial, process pool, Ray);
- :mod:`agents.benchmark.aggregate`: mean/std tables, per-class results, labels-to-target savings;
- :mod:`agents.benchmark.plots`: PNG figures; :mod:`agents.benchmark.cli`: the command line.

See docs/benchmark.md.
"""
from agents.benchmark.aggregate import load_results, regions_to_reach, saving_percent, summarize
from agents.benchmark.backends import ProcessBackend, RayBackend, SerialBackend, make_backend
from agents.benchmark.runner import SCHEMA_VERSION, RunSpec, run_episode

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
