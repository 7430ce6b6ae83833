"""Train an active-learning agent on a SegAL environment, then compare it with baselines (docs/train.md).

Usage::

    python train.py                      # batch-mode DQN on SegAL-Synthetic-v0, CPU, ~10 minutes
    python train.py --help
"""

from experiments.training import main

if __name__ == "__main__":
    main()
