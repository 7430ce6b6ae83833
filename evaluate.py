#!/usr/bin/env python
"""Benchmark labelling policies in a SegAL environment's test mode; see docs/benchmark.md.

    python evaluate.py --quick
    python evaluate.py --env SegAL-CamVid-v0 --env-kwargs data_root=/data/camvid \\
        --policies random entropy bald path/to/model.zip --seeds 5 \\
        --budgets 480 720 960 1200 1440 1920 --out results/camvid [--final-training] [--workers 2 | --ray [ADDRESS]]
"""
import sys

from agents.benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
