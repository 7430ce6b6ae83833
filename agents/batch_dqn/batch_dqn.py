"""Batch-mode DQN of Casanova et al. (ICLR 2020): K picks per step, one per candidate pool."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, PyTorchObs, Schedule
from stable_baselines3.common.utils import get_parameters_by_name, polyak_update, safe_mean

from agents.baselines import BASELINES, RARITY_SMOOTHING, rarity_weighted_column
from agents.batch_dqn.policies import RegionQNetwork, RegionQPolicy
from agents.error_regression import ERROR_FLOOR, error_regression_for
from agents.masking import masked_argmax, sample_valid
from agents.wrappers import env_attribute

SelfBatchDQN = TypeVar("SelfBatchDQN", bound="BatchDQN")

REQUIRED_OBS_KEYS = ("state", "candidates", "action_mask")


def prior_from_feature(policy_kwargs: dict[str, Any] | None, env: GymEnv | str | None) -> dict[str, Any] | None:
    """``policy_kwargs=dict(prior=NAME)`` -> the policy's ``prior_column`` (and ``prior_rarity``), or its
    ``prior_linear``: NAME is an extra feature of the env's candidate rows ("margin"), a rarity-weighted rule over
    one ("margin_balance": margin's column x the candidate's expected rarity), or the path of an error model
    (``segal-fit-error-model``'s ``.npz``: Q starts from its predicted error, imitation then RL fine-tuning). The
    policy sees only the spaces; the env knows its layout."""
    if not policy_kwargs or "prior" not in policy_kwargs:
        return policy_kwargs
    kwargs = dict(policy_kwargs)
    name = kwargs.pop("prior")
    if name is None:
        return kwargs
    if env is None or isinstance(env, str):
        raise ValueError("policy_kwargs prior=<feature> needs the env (its feature layout) at construction")
    if str(name).endswith(".npz"):
        return {**kwargs, **error_model_prior(str(name), env)}
    layout = env_attribute(env, "feature_layout")
    feature = rarity_weighted_column(name)
    if name not in layout.extras and (feature is None or feature not in layout.extras):
        rules = [rule for rule in BASELINES if rarity_weighted_column(rule)]
        raise ValueError(
            f"policy_kwargs prior={name!r} is neither an extra feature of this env ({list(layout.extras)}), a "
            f"rarity-weighted rule over one ({rules}) nor an error model (a .npz of segal-fit-error-model); add a "
            "missing feature with the env's extra_features"
        )
    kwargs["prior_column"] = layout.extra(feature or name)
    if feature is not None:
        hist = layout.class_hist
        kwargs["prior_rarity"] = (hist.start, hist.stop, RARITY_SMOOTHING)
    return kwargs


def error_model_prior(path: str, env: GymEnv) -> dict[str, Any]:
    """The policy kwargs of a prior read from an error model file: ``prior_linear`` (its standardisation,
    weights and intercept, so the saved agent does not need the file) and, for a rarity-weighted model,
    ``prior_rarity``. The model is checked against the env as ``make_agent`` checks it (another observation: an
    error naming the fix; other env settings: a warning)."""
    if not Path(path).is_file():
        raise ValueError(
            f"policy_kwargs prior={path!r}: no such error model file (write one with segal-fit-error-model)"
        )
    rule = error_regression_for(env, path)
    model = rule.model
    kwargs: dict[str, Any] = {
        "prior_linear": {
            "mean": model.mean.tolist(),
            "std": model.scale.tolist(),
            "weights": model.weights.tolist(),
            "intercept": float(model.intercept),
            "floor": ERROR_FLOOR if rule.rarity_weighted else None,
        }
    }
    if rule.rarity_weighted:
        kwargs["prior_rarity"] = (rule.layout.class_hist.start, rule.layout.class_hist.stop, RARITY_SMOOTHING)
    return kwargs


def select_pools(obs: PyTorchObs, pools: th.Tensor) -> dict[str, th.Tensor]:
    """Keep one pool per batch row: candidates (B, 1, N, Da) and mask (B, 1, N); what the pools share (the state,
    the labeled class fraction a rarity-weighted prior reads) passes through."""
    assert isinstance(obs, dict), "BatchDQN's observations are Dicts (checked with the spaces)"
    rows = th.arange(pools.shape[0], device=pools.device)
    per_pool = ("candidates", "action_mask")
    selected = {key: value for key, value in obs.items() if key not in per_pool}
    selected.update({key: obs[key][rows, pools].unsqueeze(1) for key in per_pool})
    return selected


class BatchDQN(OffPolicyAlgorithm):
    """Double DQN over ``MultiDiscrete([N] * K)``: one shared query network scores every candidate of
    every pool and each pool's pick is the argmax over its valid candidates.

    The replay buffer stores whole env steps (``buffer_size`` counts env steps, all envs together);
    ``train()`` samples steps and one pool of each, so a minibatch holds ``batch_size`` sub-transitions
    (pool k's candidates + state, action[k], shared reward, next state + next pool k, done), drawn
    uniformly as from the paper's sub-transition memory.

    Defaults are measured, not the paper's (docs/dqn.md; ../shared/docs/dqn-review.md): gamma 0 (the
    reward is the step's own mIoU gain; bootstrapping through states that barely encode the step
    index made Q drift tens of units away from any return), Adam lr 1e-3 (in the policy), a replay
    of 1000 env steps, one gradient step per env step, minibatch 16, target sync every 5 env steps,
    eps = 0.05 + 0.85 exp(-t / 10) over env steps. The paper's values: ``gamma=0.999``,
    ``buffer_size=25`` (600 sub-transitions at K=24), ``policy_kwargs=dict(optimizer_class=th.optim.SGD)``
    (momentum 0.9); its per-step x0.97 learning-rate decay is not copied (pass a schedule).

    :param policy: "RegionQPolicy" or a policy class
    :param env: the environment (Dict obs with "state", "candidates", "action_mask"; MultiDiscrete actions)
    :param learning_rate: learning rate, or a schedule of the remaining progress
    :param buffer_size: replay capacity in env steps (each holds K sub-transitions)
    :param learning_starts: env steps of uniform (masked) random picks before learning
    :param batch_size: sub-transitions per gradient step (>= 2 for BatchNorm)
    :param tau: target update coefficient (1 = hard copy)
    :param gamma: discount factor
    :param train_freq: train every ``train_freq`` env steps (or ``(n, "episode")``)
    :param gradient_steps: gradient steps per rollout (-1: as many as env steps collected)
    :param replay_buffer_class: defaults to ``DictReplayBuffer``
    :param replay_buffer_kwargs: keyword arguments for the replay buffer
    :param target_update_interval: sync the target network every this many env steps
    :param exploration_initial_eps: epsilon at t = 0
    :param exploration_final_eps: asymptotic epsilon
    :param exploration_decay: time constant (env steps) of the exponential epsilon decay
    :param max_grad_norm: gradient-norm clipping (None: no clipping); SB3 DQN's default
    :param stats_window_size: episodes averaged for rollout logs (ep_rew_mean, final_miou)
    :param tensorboard_log: tensorboard log directory (None: no logging)
    :param policy_kwargs: policy widths / optimizer, see ``RegionQPolicy``
    :param verbose: 0 silent, 1 info, 2 debug
    :param seed: seed of torch, numpy, the env and the action space
    :param device: "cpu", "cuda" or "auto"
    :param _init_setup_model: build the networks now (False when loading)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"RegionQPolicy": RegionQPolicy}
    policy: RegionQPolicy
    q_net: RegionQNetwork
    q_net_target: RegionQNetwork

    def __init__(
        self,
        policy: str | type[RegionQPolicy] = "RegionQPolicy",
        env: GymEnv | str | None = None,
        learning_rate: float | Schedule = 1e-3,
        buffer_size: int = 1000,
        learning_starts: int = 0,
        batch_size: int = 16,
        tau: float = 1.0,
        gamma: float = 0.0,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        target_update_interval: int = 5,
        exploration_initial_eps: float = 0.9,
        exploration_final_eps: float = 0.05,
        exploration_decay: float = 10.0,
        max_grad_norm: float | None = 10.0,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if batch_size < 2:
            raise ValueError("batch_size must be >= 2: the query network uses BatchNorm")
        policy_kwargs = prior_from_feature(policy_kwargs, env)
        super().__init__(
            policy,
            env,  # type: ignore[arg-type]
            learning_rate,
            buffer_size,
            learning_starts,
            batch_size,
            tau,
            gamma,
            train_freq,
            gradient_steps,
            action_noise=None,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            sde_support=False,
            supported_action_spaces=(spaces.MultiDiscrete,),
            support_multi_env=True,
        )
        self.target_update_interval = target_update_interval
        self.exploration_initial_eps = exploration_initial_eps
        self.exploration_final_eps = exploration_final_eps
        self.exploration_decay = exploration_decay
        self.max_grad_norm = max_grad_norm
        self.exploration_rate = self.epsilon(0)
        # vec-env calls of step() (each is n_envs env steps), for the target sync
        self._n_calls = 0
        self.ep_final_miou_buffer: deque[float] | None = None
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        self._check_spaces()
        super()._setup_model()
        self.q_net = self.policy.q_net
        self.q_net_target = self.policy.q_net_target
        # BN running statistics are buffers, not parameters: copy them at every target sync
        self.batch_norm_stats = get_parameters_by_name(self.q_net, ["running_"])
        self.batch_norm_stats_target = get_parameters_by_name(self.q_net_target, ["running_"])

    def _check_spaces(self) -> None:
        obs_space, action_space = self.observation_space, self.action_space
        if not isinstance(obs_space, spaces.Dict) or any(k not in obs_space.spaces for k in REQUIRED_OBS_KEYS):
            raise ValueError(f"BatchDQN needs a Dict observation with keys {REQUIRED_OBS_KEYS}, got {obs_space}")
        num_pools, pool_size = obs_space["candidates"].shape[:2]
        assert isinstance(action_space, spaces.MultiDiscrete)
        if action_space.shape != (num_pools,) or (action_space.nvec != pool_size).any():
            raise ValueError(f"action space {action_space} does not match {num_pools} pools of {pool_size} candidates")

    def epsilon(self, num_timesteps: int) -> float:
        """Exploration rate after ``num_timesteps`` env steps: final + (initial - final) exp(-t / decay)."""
        decay = np.exp(-num_timesteps / self.exploration_decay)
        return float(self.exploration_final_eps + (self.exploration_initial_eps - self.exploration_final_eps) * decay)

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        if self.ep_final_miou_buffer is None or reset_num_timesteps:
            self.ep_final_miou_buffer = deque(maxlen=self._stats_window_size)
        total_timesteps, callback = super()._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        self.exploration_rate = self.epsilon(self.num_timesteps)
        return total_timesteps, callback

    def _on_step(self) -> None:
        """After each vec-env step: sync the target network, update epsilon."""
        self._n_calls += 1
        if self._n_calls % max(self.target_update_interval // self.n_envs, 1) == 0:
            polyak_update(self.q_net.parameters(), self.q_net_target.parameters(), self.tau)
            polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
        self.exploration_rate = self.epsilon(self.num_timesteps)
        self.logger.record("rollout/exploration_rate", self.exploration_rate)

    def td_target(self, rewards: th.Tensor, dones: th.Tensor, next_obs: PyTorchObs) -> th.Tensor:
        """Double-DQN target r + gamma Q_target(s', argmax over valid a' of Q_online(s', a')), one per pool.

        rewards, dones: (B, 1); next_obs candidates (B, K', N, Da) -> targets (B, K'). Masked next
        candidates never win the argmax; a terminal step does not bootstrap. The online network picks
        a' with its running BatchNorm statistics, as it does when acting and as the target network
        evaluates it (batch statistics disagreed with them on 9-18% of the argmaxes).
        """
        num_next_pools = next_obs["candidates"].shape[1]
        if self.gamma == 0.0:
            return rewards.expand(-1, num_next_pools)
        with th.no_grad():
            training = self.q_net.training
            self.q_net.train(False)
            next_actions = masked_argmax(self.q_net(next_obs), next_obs["action_mask"])
            self.q_net.train(training)
            next_q = self.q_net_target.fitted(next_obs).gather(2, next_actions.unsqueeze(2)).squeeze(2)
            return rewards + (1.0 - dones) * self.gamma * next_q

    def train(self, gradient_steps: int, batch_size: int = 16) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        num_pools = self.action_space.shape[0]
        losses = []
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            pools = th.as_tensor(np.random.randint(num_pools, size=batch_size), device=self.device)
            target = self.td_target(data.rewards, data.dones, select_pools(data.next_observations, pools))
            actions = data.actions.long().gather(1, pools.unsqueeze(1))
            q_values = self.q_net.fitted(select_pools(data.observations, pools)).squeeze(1)
            loss = F.smooth_l1_loss(q_values.gather(1, actions), target)
            losses.append(loss.item())

            self.policy.optimizer.zero_grad()
            loss.backward()
            if self.max_grad_norm is not None:
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Greedy pick per pool; unless deterministic, each pool independently explores with
        probability ``exploration_rate`` by a uniform pick among its valid candidates."""
        actions, state = self.policy.predict(observation, state, episode_start, deterministic)  # type: ignore[arg-type]
        if not deterministic and self.exploration_rate > 0:
            mask = observation["action_mask"]  # type: ignore[index]
            explore = np.random.random(actions.shape) < self.exploration_rate
            if explore.any():
                actions = np.where(explore, sample_valid(mask), actions)
        return actions, state

    def _sample_action(
        self,
        learning_starts: int,
        action_noise: ActionNoise | None = None,
        n_envs: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Warm-up picks are uniform among valid candidates (``action_space.sample()`` ignores masks)."""
        assert self._last_obs is not None, "self._last_obs was not set"
        if self.num_timesteps < learning_starts:
            actions = sample_valid(self._last_obs["action_mask"])  # type: ignore[index]
        else:
            actions, _ = self.predict(self._last_obs, deterministic=False)
        return actions, actions

    def _update_info_buffer(self, infos: list[dict[str, Any]], dones: np.ndarray | None = None) -> None:
        """Also keep the final mIoU of finished episodes (``info["miou"]`` at the terminal step)."""
        super()._update_info_buffer(infos, dones)
        if dones is None or self.ep_final_miou_buffer is None:
            return
        self.ep_final_miou_buffer.extend(info["miou"] for info, done in zip(infos, dones) if done and "miou" in info)

    def dump_logs(self) -> None:
        if self.ep_final_miou_buffer:
            self.logger.record("rollout/final_miou", safe_mean(list(self.ep_final_miou_buffer)))
        super().dump_logs()

    def learn(
        self: SelfBatchDQN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "BatchDQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfBatchDQN:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "q_net", "q_net_target", "ep_final_miou_buffer"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []
