"""The experiment harness: everything that runs agents and policies on SegAL envs and reports on them.

- :mod:`experiments.episodes`: the one greedy episode loop every script uses;
- :mod:`experiments.training`: ``python train.py`` (a typed run configuration, the algorithm, the comparison);
- :mod:`experiments.checkpoints`: atomic SB3 checkpoints, the newest replay buffer trimmed to its filled part;
- :mod:`experiments.evaluation`: periodic evaluation while training (``train.py --eval-freq``);
- :mod:`experiments.provenance`: segal, Python, torch and device, stamped on every record;
- :mod:`experiments.folder_lock`: one command at a time per output folder;
- :mod:`experiments.benchmark`: ``python evaluate.py`` (runs, backends, aggregation, reports, plots).

The agents themselves (BatchDQN, baselines, adapters) live in :mod:`agents`, the environment in :mod:`segal_env`.
"""
