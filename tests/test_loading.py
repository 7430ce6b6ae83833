"""A saved agent that cannot act in an env fails with one message naming the file, the policy and the setting
that differs (agents.loading.make_agent), whatever went wrong underneath."""

from __future__ import annotations

import pytest
from stable_baselines3 import PPO
from test_batch_dqn import small_model

from agents import make_agent

from toy_env import ToyRegionEnv

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def saved_batch_dqn(tmp_path):
    path = tmp_path / "agent.zip"
    small_model(ToyRegionEnv(extra_features=("entropy", "margin")), seed=0).save(path)
    return path


def test_corrupt_or_truncated_zip_names_the_file(tmp_path, saved_batch_dqn):
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"not a zip at all" * 10)
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(saved_batch_dqn.read_bytes()[: saved_batch_dqn.stat().st_size // 2])
    for path in (garbage, truncated):
        with pytest.raises(ValueError, match=rf"saved agent {path}: the file is not a complete SB3 model zip.*again"):
            make_agent(path, ToyRegionEnv())


def test_other_extra_features_name_the_setting_and_the_policy(saved_batch_dqn):
    env = ToyRegionEnv(extra_features=("entropy", "margin", "bald"))
    with pytest.raises(ValueError) as error:
        make_agent(saved_batch_dqn, env)
    message = str(error.value)
    assert str(saved_batch_dqn) in message and "BatchDQN / RegionQPolicy" in message
    assert "extra_features: the agent was trained with 2 extra feature(s), this env has 3" in message
    assert "size mismatch" not in message


def test_other_classes_and_state_regions_are_named(saved_batch_dqn):
    env = ToyRegionEnv(num_classes=4, state_regions=7, extra_features=("entropy", "margin"))
    with pytest.raises(ValueError, match=r"number of classes.*3 -> 4.*state set's region count.*6 -> 7"):
        make_agent(saved_batch_dqn, env)


def test_ppo_with_other_pools_names_num_pools(tmp_path):
    path = tmp_path / "ppo.zip"
    PPO("MultiInputPolicy", ToyRegionEnv(), n_steps=8, batch_size=8, device="cpu").save(path)
    with pytest.raises(
        ValueError, match=r"ppo\.zip \(PPO / MultiInputActorCriticPolicy\).*num_pools / pool_size: 2 x 4 -> 3 x 4"
    ):
        make_agent(path, ToyRegionEnv(num_pools=3))
    assert make_agent(path, ToyRegionEnv()) is not None  # the same settings load


def test_batch_dqn_still_loads_on_other_pools(saved_batch_dqn):
    assert make_agent(saved_batch_dqn, ToyRegionEnv(num_pools=3, pool_size=5, extra_features=("entropy", "margin")))
