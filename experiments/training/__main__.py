"""``python -m experiments.training``: the same as ``python train.py`` and ``segal-train``."""

import sys

from experiments.training.run import cli

sys.exit(cli())
