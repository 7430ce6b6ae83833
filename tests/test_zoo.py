"""The RL Zoo launcher (experiments/zoo.py): BatchDQN and MaskablePPO train through the Zoo's own trainer."""

import numpy as np
import pytest

from agents import make_agent
from experiments.zoo import ZOO_ALGORITHMS, hyperparams_file, zoo_argv


def zoo_env_kwargs(kwargs: dict) -> list[str]:
    """Env kwargs in the Zoo's ``key:value`` syntax (Python values)."""
    return [f"{key}:{value!r}" for key, value in kwargs.items()]


def test_segal_algorithms_get_segal_hyperparameters_unless_the_user_gives_a_file():
    assert zoo_argv(["--algo", "batch_dqn"])[-2:] == ["--conf-file", str(hyperparams_file("batch_dqn"))]
    assert zoo_argv(["--algo=maskable_ppo"])[-1] == str(hyperparams_file("maskable_ppo"))
    assert zoo_argv(["--algo", "batch_dqn", "-conf", "mine.yml"]) == ["--algo", "batch_dqn", "-conf", "mine.yml"]
    assert zoo_argv(["--algo", "ppo"]) == ["--algo", "ppo"]  # the Zoo's own algorithms keep the Zoo's files
    for algo in ZOO_ALGORITHMS:
        assert hyperparams_file(algo).is_file()


@pytest.mark.parametrize("algo", sorted(ZOO_ALGORITHMS))
def test_zoo_trains_and_evaluates_a_segal_algorithm(algo, tiny_kwargs, tmp_path, one_torch_thread):
    pytest.importorskip("rl_zoo3", reason="the RL Zoo comes with the zoo extra: pip install -e '.[zoo]'")
    from experiments.zoo import main

    steps = tiny_kwargs["budget"] // tiny_kwargs["num_pools"]  # one episode, evaluated half-way and at the end
    argv = [
        "--algo",
        algo,
        "--env",
        "SegAL-Synthetic-v0",
        "-n",
        str(steps),
        "-f",
        str(tmp_path),
        "--seed",
        "0",
        "--eval-freq",
        str(steps // 2),
        "--eval-episodes",
        "1",
        "--env-kwargs",
        *zoo_env_kwargs(tiny_kwargs),
    ]
    if algo == "maskable_ppo":
        argv += ["-params", f"n_steps:{steps}", f"batch_size:{steps}"]
    assert main(argv) == 0

    run = tmp_path / algo / "SegAL-Synthetic-v0_1"
    evaluations = np.load(run / "evaluations.npz")
    assert evaluations["timesteps"].tolist() == [steps // 2, steps]
    assert np.isfinite(evaluations["results"]).all()
    assert (run / "best_model.zip").is_file()
    # what the Zoo saved loads as a segal agent and acts on the env
    import gymnasium as gym

    env = gym.make("SegAL-Synthetic-v0", **tiny_kwargs)
    obs, _ = env.reset(seed=0)
    agent = make_agent(run / "SegAL-Synthetic-v0.zip", env)
    action, _ = agent.predict(obs, deterministic=True)
    assert env.action_space.contains(np.asarray(action))
    if algo == "batch_dqn":  # segal's hyperparameters start it from margin_balance, as python train.py does
        assert agent.policy.q_net.prior_column == env.unwrapped.feature_layout.extra("margin")
        assert agent.policy.q_net.prior_rarity is not None
