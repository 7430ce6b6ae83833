"""SB3's own algorithms on the region-set env: PPO/A2C (MultiInputPolicy, optionally with
RegionSetExtractor), MaskablePPO (masks from action_masks()), plain DQN through SinglePoolWrapper."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from sb3_contrib import MaskablePPO
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

from agents import BatchDQN, MaskedPredictor, RegionSetExtractor, SinglePoolWrapper, detect_algorithm, make_agent

from toy_env import ToyRegionEnv

EXTRACTOR = dict(features_extractor_class=RegionSetExtractor)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def unmasked_env() -> ToyRegionEnv:
    """PPO/A2C cannot mask their picks: give them pools without invalid candidates."""
    return ToyRegionEnv(mask_prob=0.0)


@pytest.mark.parametrize("algorithm", [PPO, A2C])
@pytest.mark.parametrize("policy_kwargs", [None, EXTRACTOR], ids=["flatten", "region_set"])
def test_ppo_a2c_multi_input(algorithm, policy_kwargs):
    venv = DummyVecEnv([unmasked_env] * 2)
    kwargs = dict(n_steps=32, batch_size=64) if algorithm is PPO else dict(n_steps=8)
    model = algorithm("MultiInputPolicy", venv, policy_kwargs=policy_kwargs, seed=0, device="cpu", **kwargs)
    model.learn(256)
    assert model.num_timesteps >= 256
    if policy_kwargs:
        assert isinstance(model.policy.features_extractor, RegionSetExtractor)


def test_region_set_extractor_is_invariant_to_state_row_order():
    env = ToyRegionEnv()
    extractor = RegionSetExtractor(env.observation_space)
    obs, _ = env.reset(seed=0)
    batch = {k: th.as_tensor(v).unsqueeze(0) for k, v in obs.items()}
    features = extractor(batch)
    assert features.shape == (1, extractor.features_dim)
    shuffled = dict(batch, state=batch["state"][:, th.randperm(batch["state"].shape[1])])
    th.testing.assert_close(extractor(shuffled), features)


@pytest.mark.parametrize("policy_kwargs", [None, EXTRACTOR], ids=["flatten", "region_set"])
def test_maskable_ppo_uses_action_masks(policy_kwargs):
    venv = DummyVecEnv([lambda: ToyRegionEnv(mask_prob=0.5)] * 2)  # a masked pick raises in the env
    model = MaskablePPO("MultiInputPolicy", venv, n_steps=32, batch_size=64, policy_kwargs=policy_kwargs, seed=0)
    model.learn(256)
    agent = MaskedPredictor(model)
    venv.seed(1)
    rewards, _ = evaluate_policy(agent, venv, n_eval_episodes=4, deterministic=False, warn=False)
    assert rewards > 0


def test_dqn_through_single_pool_wrapper():
    env = SinglePoolWrapper(ToyRegionEnv(num_pools=1, mask_prob=0.5))
    env.reset(seed=0)
    assert env.action_space.n == 4 and env.action_masks().shape == (4,)
    model = DQN("MultiInputPolicy", env, learning_starts=50, buffer_size=500, seed=0, device="cpu")
    model.learn(300)
    _, lengths = evaluate_policy(model, env, n_eval_episodes=2, return_episode_rewards=True, warn=False)
    assert lengths == [5, 5]


def reset_until_masked(env: SinglePoolWrapper) -> int:
    """Reset until the pool has a masked candidate; return its index."""
    env.reset(seed=0)
    while env.action_masks().all():
        env.reset()
    return int(np.flatnonzero(~env.action_masks())[0])


def test_single_pool_wrapper_handles_masked_picks():
    env = SinglePoolWrapper(ToyRegionEnv(num_pools=1, mask_prob=0.5))
    _, _, _, _, info = env.step(reset_until_masked(env))
    assert info["invalid_action"] is True
    _, _, _, _, info = env.step(int(np.flatnonzero(env.action_masks())[0]))
    assert info["invalid_action"] is False
    strict = SinglePoolWrapper(ToyRegionEnv(num_pools=1, mask_prob=0.5), invalid_action="raise")
    with pytest.raises(ValueError, match="masked"):
        strict.step(reset_until_masked(strict))


def test_single_pool_wrapper_needs_one_pool():
    with pytest.raises(ValueError, match="K=1"):
        SinglePoolWrapper(ToyRegionEnv(num_pools=2))


@pytest.mark.parametrize(
    ("algorithm", "kwargs"),
    [
        (BatchDQN, dict(buffer_size=20, policy_kwargs=dict(state_net_arch=[8], candidate_net_arch=[8]))),
        (PPO, dict(n_steps=16, batch_size=16)),
        (A2C, dict(n_steps=8)),
        (MaskablePPO, dict(n_steps=16, batch_size=16)),
    ],
)
def test_make_agent_loads_saved_models(tmp_path, algorithm, kwargs):
    env = ToyRegionEnv() if algorithm in (BatchDQN, MaskablePPO) else unmasked_env()
    policy = "RegionQPolicy" if algorithm is BatchDQN else "MultiInputPolicy"
    model = algorithm(policy, env, seed=0, device="cpu", **kwargs)
    model.learn(16)
    model.save(tmp_path / "agent")
    assert detect_algorithm(tmp_path / "agent.zip") is algorithm
    agent = make_agent(tmp_path / "agent", env, device="cpu")  # ".zip" may be left out
    loaded = agent.model if isinstance(agent, MaskedPredictor) else agent
    assert type(loaded) is algorithm
    obs, _ = env.reset(seed=3)
    masks = {"action_masks": env.action_masks()} if algorithm is MaskablePPO else {}
    expected, _ = model.predict(obs, deterministic=True, **masks)
    np.testing.assert_array_equal(agent.predict(obs, deterministic=True)[0], expected)


def test_make_agent_loads_dqn_for_a_wrapped_env(tmp_path):
    env = SinglePoolWrapper(ToyRegionEnv(num_pools=1))
    DQN("MultiInputPolicy", env, learning_starts=0, buffer_size=50, device="cpu").save(tmp_path / "dqn.zip")
    assert isinstance(make_agent(tmp_path / "dqn.zip", env, device="cpu"), DQN)


def test_make_agent_rejects_unknown_paths(tmp_path):
    with pytest.raises(ValueError, match="not a baseline name"):
        make_agent(tmp_path / "missing.zip", ToyRegionEnv())
