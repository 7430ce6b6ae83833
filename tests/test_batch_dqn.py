from __future__ import annotations

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

from agents import BatchDQN, RandomBaseline, RegionQNetwork, make_agent
from agents.batch_dqn.policies import GATE_FEATURES
from segal_env.layout import FeatureLayout

from toy_env import ToyRegionEnv

SMALL_NET = dict(state_net_arch=[32, 16], state_embed_dim=16, candidate_net_arch=[64, 32])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_model(env=None, **kwargs) -> BatchDQN:
    kwargs.setdefault("policy_kwargs", SMALL_NET)
    kwargs.setdefault("buffer_size", 100)
    return BatchDQN("RegionQPolicy", env if env is not None else ToyRegionEnv(), device="cpu", **kwargs)


def sample_obs(env: ToyRegionEnv, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A batch of n observations (as a VecEnv would give)."""
    env.reset(seed=seed)
    observations = [env.reset()[0] for _ in range(n)]
    return {key: np.stack([o[key] for o in observations]) for key in observations[0]}


class CountCalls(BaseCallback):
    def _on_step(self) -> bool:
        return True


@pytest.mark.filterwarnings("ignore:rich is experimental")
@pytest.mark.parametrize("n_envs", [1, 2])
def test_run(n_envs):
    venv = DummyVecEnv([ToyRegionEnv] * n_envs)
    model = small_model(venv, seed=0)
    callback = CountCalls()
    model.learn(24, callback=callback, progress_bar=True)
    assert model.num_timesteps == 24
    assert callback.n_calls == 24 // n_envs
    assert model._n_updates > 0
    actions, _ = model.predict(venv.reset(), deterministic=True)
    assert actions.shape == (n_envs, 2) and actions.dtype.kind == "i"


def test_papers_widths_give_the_papers_network_size():
    """~0.4M parameters at CamVid sizes (S=240 state regions, C=11, no extras)."""
    state_dim = 11 + 192
    obs_space = spaces.Dict(
        {
            "state": spaces.Box(0, 1, (240, state_dim)),
            "candidates": spaces.Box(0, 1, (24, 20, state_dim + 64)),
            "action_mask": spaces.Box(0, 1, (24, 20)),
        }
    )
    net = RegionQNetwork(obs_space, [256, 128], 128, [512, 256, 128], 64)
    assert 0.35e6 < sum(p.numel() for p in net.parameters()) < 0.45e6


def test_gate_columns_are_the_layouts_kl_histograms():
    layout = FeatureLayout(11, ("entropy", "bald"))
    assert layout.kl == slice(layout.candidate_dim - GATE_FEATURES, layout.candidate_dim)


def test_network_is_shared_over_pools_and_candidates():
    """Weights do not depend on K or N, and a candidate's Q does not depend on its position."""
    model = small_model(seed=0)
    obs = {k: th.as_tensor(v) for k, v in sample_obs(ToyRegionEnv(num_pools=3, pool_size=5), 2).items()}
    q_net = model.q_net.eval()
    q = q_net(obs)
    assert q.shape == (2, 3, 5)
    flipped = dict(obs, candidates=obs["candidates"].flip(1).flip(2))
    th.testing.assert_close(q_net(flipped), q.flip(1).flip(2))


def test_closed_gate_leaves_the_state_value_for_every_candidate():
    """Q = V(s) + gate x A(s, a): the gate scales the candidate's advantage, never the level V(s)."""
    model = small_model(seed=0)
    obs = {k: th.as_tensor(v) for k, v in sample_obs(ToyRegionEnv(num_pools=3, pool_size=5), 4).items()}
    q_net = model.q_net.eval()
    with th.no_grad():
        assert q_net(obs).std(dim=(1, 2)).min() > 0  # an open gate: candidates differ
        gate_out = q_net.gate[-2]
        gate_out.weight.zero_()
        gate_out.bias.fill_(-60.0)
        q = q_net(obs)
        value = q_net.value(q_net.state_embed(q_net.state_net(obs["state"].flatten(0, 1)).view(4, -1)))
    th.testing.assert_close(q, value.view(4, 1, 1).expand(4, 3, 5))


def test_learns_with_its_defaults():
    """Reward = mean signal of the picked candidates: with the algorithm's own defaults (only the
    network is smaller), greedy beats random on identical episodes."""
    gains = []
    for seed in range(3):
        model = BatchDQN("RegionQPolicy", ToyRegionEnv(), policy_kwargs=SMALL_NET, seed=seed, device="cpu")
        model.learn(300)
        returns = {}
        for name, agent in (("dqn", model), ("random", RandomBaseline(model.env.get_attr("feature_layout")[0], seed))):
            eval_env = DummyVecEnv([ToyRegionEnv])
            eval_env.seed(100 + seed)
            returns[name], _ = evaluate_policy(agent, eval_env, n_eval_episodes=20, deterministic=True, warn=False)
        gains.append(returns["dqn"] - returns["random"])
    # random ~2.5 per 5-step episode, best possible ~3.9
    assert min(gains) > 0.2 and np.mean(gains) > 0.5, gains


def test_save_load(tmp_path):
    model = small_model(seed=0)
    model.learn(20)
    obs = sample_obs(ToyRegionEnv(), 8)
    before, _ = model.predict(obs, deterministic=True)
    q_before = model.q_net.eval()({k: th.as_tensor(v) for k, v in obs.items()})
    model.save(tmp_path / "model")
    loaded = BatchDQN.load(tmp_path / "model", device="cpu")
    after, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(before, after)
    th.testing.assert_close(loaded.q_net({k: th.as_tensor(v) for k, v in obs.items()}), q_before)
    assert loaded.exploration_rate == model.exploration_rate and loaded.gamma == model.gamma
    # keeps training after loading
    loaded.set_env(ToyRegionEnv())
    loaded.learn(4, reset_num_timesteps=False)


def test_load_with_other_pool_size(tmp_path):
    """Train with N=4, evaluate with N=6 (the paper trains with N=20 and tests with N=10)."""
    model = small_model(seed=0)
    model.learn(10)
    model.save(tmp_path / "model")
    test_env = ToyRegionEnv(num_pools=3, pool_size=6)
    agent = make_agent(tmp_path / "model", test_env, device="cpu")
    assert isinstance(agent, BatchDQN)
    actions, _ = agent.predict(test_env.reset(seed=0)[0], deterministic=True)
    assert actions.shape == (3,)


def test_a_live_model_acts_on_other_pool_counts_and_sizes():
    """What SB3's EvalCallback needs when the evaluation env's pools differ from training's: the live model,
    not a reloaded one, predicts on any K x N (single and batched), picking only valid candidates."""
    model = small_model(seed=0)  # trained spaces: 2 pools of 4
    test_env = ToyRegionEnv(num_pools=3, pool_size=6, mask_prob=0.5)
    obs = test_env.reset(seed=1)[0]
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (3,) and obs["action_mask"][np.arange(3), actions].all()
    batch = sample_obs(test_env, 5)
    assert model.predict(batch, deterministic=True)[0].shape == (5, 3)
    explored, _ = model.predict(obs, deterministic=False)
    assert explored.shape == (3,) and obs["action_mask"][np.arange(3), explored].all()


def test_deterministic():
    def train(seed):
        model = small_model(seed=seed)
        model.learn(30)
        return model

    first, second, other = train(3), train(3), train(4)
    for (name, p1), p2 in zip(first.policy.state_dict().items(), second.policy.state_dict().values()):
        th.testing.assert_close(p1, p2, msg=name)
    assert any(not th.equal(p1, p3) for p1, p3 in zip(first.q_net.parameters(), other.q_net.parameters()))
    obs = sample_obs(ToyRegionEnv(), 6)
    np.testing.assert_array_equal(first.predict(obs, deterministic=True)[0], second.predict(obs, deterministic=True)[0])


def test_exploration_and_warmup_pick_only_valid_candidates():
    env = ToyRegionEnv(pool_size=6, mask_prob=0.7)  # the env raises ValueError on a masked pick
    model = small_model(env, seed=0, learning_starts=15, exploration_initial_eps=1.0, exploration_final_eps=1.0)
    model.learn(30)
    obs = sample_obs(ToyRegionEnv(pool_size=6, mask_prob=0.7), 50)
    for deterministic in (True, False):
        actions, _ = model.predict(obs, deterministic=deterministic)
        picked = np.take_along_axis(obs["action_mask"], actions[..., None], axis=2)
        assert (picked == 1).all()
    model.num_timesteps = 0  # warm-up branch of _sample_action
    model._last_obs = obs
    actions, buffer_actions = model._sample_action(learning_starts=10, n_envs=50)
    assert (np.take_along_axis(obs["action_mask"], actions[..., None], axis=2) == 1).all()
    np.testing.assert_array_equal(actions, buffer_actions)


def test_epsilon_schedule():
    model = small_model()
    assert model.epsilon(0) == pytest.approx(0.9)
    assert model.epsilon(10) == pytest.approx(0.05 + 0.85 * np.exp(-1))
    assert model.epsilon(1000) == pytest.approx(0.05)


class FixedQ(th.nn.Module):
    def __init__(self, values: list[float]):
        super().__init__()
        self.values = th.tensor(values)

    def forward(self, obs):
        return self.values.expand(obs["action_mask"].shape).clone()

    fitted = forward  # no prior: the fitted scores are the acting ones


def test_td_target_ignores_masked_next_candidates():
    model = small_model(gamma=0.5)
    # online net prefers candidate 0, which is masked in the next pool -> argmax is candidate 2
    model.q_net = FixedQ([5.0, 1.0, 3.0, 2.0])
    model.q_net_target = FixedQ([100.0, 10.0, 20.0, 30.0])
    next_obs = {
        "state": th.zeros(2, 6, 3),
        "candidates": th.zeros(2, 1, 4, 8),
        "action_mask": th.tensor([[[0.0, 1.0, 1.0, 1.0]], [[1.0, 1.0, 1.0, 1.0]]]),
    }
    target = model.td_target(th.tensor([[1.0], [1.0]]), th.tensor([[0.0], [0.0]]), next_obs)
    th.testing.assert_close(target, th.tensor([[1.0 + 0.5 * 20.0], [1.0 + 0.5 * 100.0]]))
    terminal = model.td_target(th.tensor([[1.0], [2.0]]), th.tensor([[1.0], [1.0]]), next_obs)
    th.testing.assert_close(terminal, th.tensor([[1.0], [2.0]]))


def test_td_target_picks_next_action_with_running_batchnorm_statistics():
    """The online net chooses a' as it does when acting (eval mode), and keeps its own mode."""
    env = ToyRegionEnv()
    model = small_model(env, gamma=0.5, seed=0)
    model.learn(16)
    next_obs = {k: th.as_tensor(v) for k, v in sample_obs(env, 8, seed=3).items()}
    rewards, dones = th.zeros(8, 1), th.zeros(8, 1)
    model.q_net.train(False)
    expected = model.td_target(rewards, dones, next_obs)
    model.q_net.train(True)
    th.testing.assert_close(model.td_target(rewards, dones, next_obs), expected)
    assert model.q_net.training


def test_td_target_is_the_reward_when_gamma_is_zero():
    model = small_model(gamma=0.0)
    next_obs = {"state": th.zeros(2, 6, 3), "candidates": th.zeros(2, 3, 4, 8), "action_mask": th.ones(2, 3, 4)}
    target = model.td_target(th.tensor([[1.5], [-2.0]]), th.tensor([[0.0], [1.0]]), next_obs)
    th.testing.assert_close(target, th.tensor([[1.5] * 3, [-2.0] * 3]))


def test_replay_buffer_save_load(tmp_path):
    model = small_model(seed=0)
    model.learn(12)
    model.save_replay_buffer(tmp_path / "buffer")
    fresh = small_model(seed=1)
    fresh.load_replay_buffer(tmp_path / "buffer")
    assert fresh.replay_buffer.pos == model.replay_buffer.pos == 12
    for key, stored in model.replay_buffer.observations.items():
        np.testing.assert_array_equal(fresh.replay_buffer.observations[key], stored)
    np.testing.assert_array_equal(fresh.replay_buffer.actions, model.replay_buffer.actions)
    np.testing.assert_array_equal(fresh.replay_buffer.rewards, model.replay_buffer.rewards)
    fresh.learn(4, reset_num_timesteps=False)


def test_tensorboard_logs(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = small_model(seed=0, tensorboard_log=str(tmp_path))
    model.learn(20, log_interval=1)  # 4 episodes of 5 steps
    event_files = list(tmp_path.rglob("events.out.tfevents.*"))
    assert event_files
    events = EventAccumulator(str(event_files[0].parent))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "rollout/exploration_rate", "rollout/final_miou", "rollout/ep_rew_mean"} <= tags
    assert 0.2 <= events.Scalars("rollout/final_miou")[-1].value <= 0.3


def test_rejects_other_action_spaces():
    class DiscreteEnv(ToyRegionEnv):
        def __init__(self):
            super().__init__()
            self.action_space = spaces.Discrete(4)

    with pytest.raises(AssertionError, match="MultiDiscrete"):
        small_model(DiscreteEnv())
    with pytest.raises(ValueError, match="BatchNorm"):
        small_model(batch_size=1)


@pytest.mark.parametrize(("rule", "prior_in_loss"), [("margin", True), ("margin", False), ("margin_balance", False)])
def test_an_untrained_agent_with_a_prior_picks_exactly_as_the_rule(
    tiny_kwargs, tmp_path, one_torch_thread, rule, prior_in_loss
):
    """Start from a rule: Q = its score (margin's column, or margin x expected rarity) + a learned correction that
    starts at zero."""
    import gymnasium as gym

    from experiments.episodes import play_episode

    env = gym.make("SegAL-Synthetic-v0", **{**tiny_kwargs, "device": "cpu"})
    model = BatchDQN("RegionQPolicy", env, policy_kwargs=dict(prior=rule, prior_in_loss=prior_in_loss), seed=0)
    assert model.policy.q_net.prior_column == env.unwrapped.feature_layout.extra("margin")
    agent_picks, rule_picks, margin_picks = [], [], []
    margin = make_agent("margin", env)
    play_episode(
        make_agent(rule, env),
        env,
        seed=1,
        on_step=lambda obs, action, *_: (
            agent_picks.append(model.predict(obs, deterministic=True)[0]),
            rule_picks.append(action),
            margin_picks.append(margin.predict(obs)[0]),
        ),
    )
    assert all(np.array_equal(a, r) for a, r in zip(agent_picks, rule_picks))
    if rule == "margin_balance":  # the rarity weight changes picks: the test can tell the two priors apart
        assert not all(np.array_equal(a, m) for a, m in zip(agent_picks, margin_picks))
    model.learn(4)
    model.gamma = 0.5  # bootstrapping scores the next pools with the prior too
    model.train(gradient_steps=2, batch_size=4)
    model.save(tmp_path / "prior")
    loaded = make_agent(str(tmp_path / "prior.zip"), env)
    for key in ("prior_column", "prior_in_loss", "prior_rarity"):
        assert getattr(loaded.policy.q_net, key) == getattr(model.policy.q_net, key)
    narrow = gym.make("SegAL-Synthetic-v0", **{**tiny_kwargs, "device": "cpu", "extra_features": ["entropy"]})
    with pytest.raises(ValueError, match="extra_features"):
        BatchDQN("RegionQPolicy", narrow, policy_kwargs=dict(prior=rule))
    with pytest.raises(ValueError, match="neither an extra feature.*margin_balance"):
        BatchDQN("RegionQPolicy", env, policy_kwargs=dict(prior="class_balance"))


@pytest.mark.parametrize("rarity_weighted", [False, True])
def test_an_untrained_agent_started_from_an_error_model_picks_exactly_as_the_model(
    tiny_kwargs, tmp_path, rarity_weighted
):
    """Imitation, then RL fine-tuning: prior=<model.npz> starts Q from the error model's prediction (weighted by
    expected rarity for a rarity-weighted model), and the saved agent carries it without the file."""
    import gymnasium as gym

    from agents import ErrorModel
    from experiments.episodes import play_episode

    env = gym.make("SegAL-Synthetic-v0", **{**tiny_kwargs, "device": "cpu"})
    layout = env.unwrapped.feature_layout
    width, rng = layout.candidate_dim, np.random.default_rng(0)
    info = {"num_classes": layout.num_classes, "extras": list(layout.extras), "rarity_weighted": rarity_weighted}
    fitted = ErrorModel(rng.random(width), rng.random(width) + 0.5, 0.05 * rng.normal(size=width), 0.3, info)
    path = fitted.save(tmp_path / "error_model.npz")
    model = BatchDQN("RegionQPolicy", env, policy_kwargs=dict(prior=str(path)), seed=0)
    assert (model.policy.q_net.prior_rarity is not None) == rarity_weighted
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    play_episode(
        make_agent(str(path), env),
        env,
        seed=1,
        on_step=lambda obs, action, *_: pairs.append((model.predict(obs, deterministic=True)[0], action)),
    )
    assert len(pairs) > 1 and all(np.array_equal(agent, rule) for agent, rule in pairs)
    model.learn(4)
    model.save(tmp_path / "agent")
    path.unlink()  # the saved agent holds the prior itself
    loaded = make_agent(str(tmp_path / "agent.zip"), env)
    obs, _ = env.reset(seed=2)
    tensors, _ = model.policy.obs_to_tensor(obs)
    th.testing.assert_close(loaded.policy.q_net.prior(tensors), model.policy.q_net.prior(tensors), rtol=0, atol=0)
    with pytest.raises(ValueError, match="no such error model file.*segal-fit-error-model"):
        BatchDQN("RegionQPolicy", env, policy_kwargs=dict(prior=str(path)))
    narrow = ErrorModel(np.zeros(width - 1), np.ones(width - 1), np.ones(width - 1), 0.0, {})
    with pytest.raises(ValueError, match="fitted on another observation"):
        BatchDQN("RegionQPolicy", env, policy_kwargs=dict(prior=str(narrow.save(tmp_path / "narrow.npz"))))
    linear = loaded.policy.q_net.prior_linear
    with pytest.raises(ValueError, match="give one prior"):
        small_model(policy_kwargs={**SMALL_NET, "prior_column": 0, "prior_linear": linear})
    with pytest.raises(ValueError, match="prior_linear mean has shape"):
        small_model(policy_kwargs={**SMALL_NET, "prior_linear": linear})  # the toy env's rows are narrower


@pytest.mark.parametrize("prior_in_loss", [True, False])
def test_a_prior_kept_out_of_the_loss_biases_the_pick_but_not_the_fit(prior_in_loss):
    """prior_in_loss=False: the TD loss never sees the prior, so its scale cannot change what is learned
    (a fitted prior is cancelled by the correction where rewards do not scale with it)."""
    env = ToyRegionEnv()
    models = [
        small_model(
            env,
            seed=0,
            learning_starts=100,  # collect only: both networks keep their (identical) initial weights
            policy_kwargs={**SMALL_NET, "prior_column": 0, "prior_scale": scale, "prior_in_loss": prior_in_loss},
        )
        for scale in (1.0, 100.0)
    ]
    models[0].learn(16)
    models[1]._setup_learn(16)
    models[1].replay_buffer = models[0].replay_buffer  # the same transitions for both scales
    obs = {key: th.as_tensor(value) for key, value in sample_obs(env, 8, seed=3).items()}
    prior = obs["candidates"][..., 0]
    for model in models:
        model.policy.set_training_mode(False)
    before = [model.q_net.fitted(obs) for model in models]
    th.testing.assert_close(models[1].q_net(obs) - models[0].q_net(obs), 99.0 * prior, atol=1e-3, rtol=0)
    for model in models:
        np.random.seed(7)
        model.train(gradient_steps=3, batch_size=8)
        model.policy.set_training_mode(False)
    after = [model.q_net.fitted(obs) for model in models]
    if prior_in_loss:  # the loss fits Q with the prior in it: the two scales learn different corrections
        th.testing.assert_close(before[1] - before[0], 99.0 * prior, atol=1e-3, rtol=0)
        assert not th.allclose(after[1] - after[0], 99.0 * prior, atol=1e-3)
    else:  # the loss fits V + gate x A alone: the same steps on the same data give the same network
        th.testing.assert_close(before[0], before[1])
        th.testing.assert_close(after[0], after[1])
        assert not th.allclose(after[0], before[0])


def test_a_rarity_weighted_prior_is_checked_against_the_observation():
    env = ToyRegionEnv()
    num_classes = env.observation_space["labeled_class_fraction"].shape[0]
    with pytest.raises(ValueError, match="needs prior_column"):
        small_model(env, policy_kwargs={**SMALL_NET, "prior_rarity": (0, num_classes, 0.05)})
    with pytest.raises(ValueError, match="class-histogram columns"):
        small_model(env, policy_kwargs={**SMALL_NET, "prior_column": 0, "prior_rarity": (0, num_classes + 1, 0.05)})
    with pytest.raises(ValueError, match="positive smoothing"):
        small_model(env, policy_kwargs={**SMALL_NET, "prior_column": 0, "prior_rarity": (0, num_classes, 0.0)})
