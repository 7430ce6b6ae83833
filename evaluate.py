"""Benchmark labelling policies in a SegAL environment's test mode (docs/benchmark.md).

Usage::

    python evaluate.py --quick
    python evaluate.py --help
"""

import sys

from experiments.benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
