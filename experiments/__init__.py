"""The experiment harness: everything that runs agents and policies on SegAL envs and reports on them.

- :mod:`experiments.episodes`: the one greedy episode loop every script uses;
- :mod:`experiments.training`: ``python train.py`` (train an agent, checkpoints, resume, comparison);
- :mod:`experiments.checkpoints`: atomic SB3 checkpoints with their replay buffers;
- :mod:`experiments.benchmark`: ``python evaluate.py`` (runs, backends, aggregation, reports, plots).

The agents themselves (BatchDQN, baselines, adapters) live in :mod:`agents`, the environment in :mod:`segal_env`.
"""
