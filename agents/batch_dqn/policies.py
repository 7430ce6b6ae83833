"""The query network of Casanova et al. (2020) as an SB3 policy.

One network with shared weights scores every candidate region of every pool, so its parameters do
not depend on the number of pools K or the pool size N (only on the row widths and on the number of
state regions S): a policy trained with N=20 can be evaluated with N=10, as in the paper.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from agents.masking import masked_argmax

# the two 32-bin KL histograms that close every candidate row (segal_env.layout.KL_BINS); kept as a
# literal so that the agents import without the environment package
GATE_FEATURES = 64


def preactivation_mlp(in_dim: int, widths: list[int]) -> nn.Sequential:
    """``Linear`` on the raw features, then ``BN -> ReLU -> Linear`` blocks (pre-activation).

    The raw features are not passed through BN/ReLU first: a ReLU there would zero half of them.
    """
    layers: list[nn.Module] = [nn.Linear(in_dim, widths[0])]
    for width_in, width_out in zip(widths[:-1], widths[1:]):
        layers += [nn.BatchNorm1d(width_in), nn.ReLU(), nn.Linear(width_in, width_out)]
    return nn.Sequential(*layers)


class RegionQNetwork(nn.Module):
    """Q(s, a) for every candidate: ``obs["state"]`` (B, S, Ds), ``obs["candidates"]`` (B, K, N, Da) -> (B, K, N).

    Q(s, a) = V(s) + gate(KL(a)) x A(s, a) [+ prior_scale x prior(s, a)]. The paper multiplies the whole fused score by the
    sigmoid gate, which ties the level of Q (the mean reward, often negative) into the ranking of
    the candidates: fitting a realistic level cost most of the pick quality (docs/dqn.md). Here the
    state value V carries the level and the gate only scales the candidate's advantage A.
    The last ``gate_dim`` candidate columns (the two KL histograms of ``FeatureLayout``) only feed
    the gate; all other candidate columns feed the candidate branch. With ``prior_column`` (a heuristic's
    score column, e.g. margin's, and with ``prior_rarity`` that score times the candidate's expected rarity, as
    margin_balance) or ``prior_linear`` (a fitted error model's prediction, a linear function of the whole row)
    Q adds that score and the advantage starts at zero: the untrained agent picks exactly as the rule, and
    training only has to find where to differ from it.
    The TD loss fits V + gate x A alone (``fitted``) and the prior only biases the greedy pick (``forward``).
    With ``prior_in_loss=True`` it fits Q with the prior in it, and a prior whose scale the rewards do not
    follow is cancelled by A: after 300 synthetic steps at ``prior_scale`` 10, A correlated -0.9 with the prior
    within a pool and the greedy pick was margin's in about half of the pools (docs/dqn.md).
    """

    linear_mean: th.Tensor  # prior_linear's buffers (``_register_linear_prior``)
    linear_std: th.Tensor
    linear_weights: th.Tensor

    def __init__(
        self,
        observation_space: spaces.Dict,
        state_net_arch: list[int],
        state_embed_dim: int,
        candidate_net_arch: list[int],
        gate_dim: int,
        prior_column: int | None = None,
        prior_scale: float = 1.0,
        prior_in_loss: bool = False,
        prior_rarity: tuple[int, int, float] | None = None,
        prior_linear: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        num_state_regions, state_dim = observation_space["state"].shape
        candidate_dim = observation_space["candidates"].shape[-1]
        if candidate_dim <= gate_dim:
            raise ValueError(f"candidate rows have {candidate_dim} columns, need more than the {gate_dim} gate columns")
        self.gate_dim = gate_dim
        # one scalar per state region, then an embedding of the whole state set
        self.state_net = preactivation_mlp(state_dim, [*state_net_arch, 1])
        self.state_embed = nn.Sequential(
            nn.BatchNorm1d(num_state_regions), nn.ReLU(), nn.Linear(num_state_regions, state_embed_dim)
        )
        self.candidate_net = preactivation_mlp(candidate_dim - gate_dim, list(candidate_net_arch))
        fused_dim = candidate_net_arch[-1] + state_embed_dim
        self.fusion = nn.Sequential(nn.BatchNorm1d(fused_dim), nn.ReLU(), nn.Linear(fused_dim, 1))
        self.value = nn.Sequential(nn.ReLU(), nn.Linear(state_embed_dim, 1))
        self.gate = nn.Sequential(nn.BatchNorm1d(gate_dim), nn.ReLU(), nn.Linear(gate_dim, 1), nn.Sigmoid())
        self.prior_column, self.prior_scale, self.prior_in_loss = prior_column, prior_scale, prior_in_loss
        self.prior_rarity, self.prior_linear = prior_rarity, prior_linear
        if prior_column is not None and prior_linear is not None:
            raise ValueError("give one prior: a score column (prior_column) or a linear score (prior_linear)")
        if prior_linear is not None:
            self._register_linear_prior(prior_linear, candidate_dim)
        if prior_rarity is not None:
            if not self.has_prior:
                raise ValueError("prior_rarity weights a prior score: it needs prior_column or prior_linear")
            fraction = observation_space.spaces.get("labeled_class_fraction")
            start, stop, smoothing = prior_rarity
            if fraction is None or stop - start != fraction.shape[0] or smoothing <= 0:
                raise ValueError(
                    f"prior_rarity {prior_rarity} must be (first, end) of the candidates' class-histogram columns and a "
                    "positive smoothing, and needs a 'labeled_class_fraction' observation of as many classes"
                )
        if prior_column is not None and not 0 <= prior_column < candidate_dim - gate_dim:
            raise ValueError(
                f"prior_column {prior_column} is not a candidate feature column (0..{candidate_dim - gate_dim - 1})"
            )
        if self.has_prior:
            # start from the rule: the learned advantage is zero until training moves it
            last = self.fusion[-1]
            assert isinstance(last, nn.Linear)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def _register_linear_prior(self, linear: dict[str, Any], candidate_dim: int) -> None:
        """Buffers of ``prior_linear`` (float64, as the error model computes): ((row - mean) / std) . weights
        + intercept, floored at ``floor`` when it is not None."""
        missing = {"mean", "std", "weights", "intercept", "floor"} - set(linear)
        if missing:
            raise ValueError(f"prior_linear lacks {sorted(missing)}; BatchDQN's prior=<model.npz> builds it")
        for name in ("mean", "std", "weights"):
            vector = th.as_tensor(linear[name], dtype=th.float64)
            if vector.shape != (candidate_dim,):
                raise ValueError(
                    f"prior_linear {name} has shape {tuple(vector.shape)}, the candidate rows have {candidate_dim} "
                    "columns: the error model was fitted on another observation"
                )
            self.register_buffer(f"linear_{name}", vector, persistent=False)

    @property
    def has_prior(self) -> bool:
        """Whether Q starts from a rule's score (a column or a linear prediction)."""
        return self.prior_column is not None or self.prior_linear is not None

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        """The scores the greedy pick maximises: V + (gate x A [+ prior_scale x prior])."""
        value, advantage = self.value_and_advantage(obs)
        if self.has_prior:  # a heuristic's score plus a learned correction
            advantage = advantage + self.prior_scale * self.prior(obs)
        return value + advantage

    def prior(self, obs: PyTorchObs) -> th.Tensor:
        """The rule's score per candidate (B, K, N): the ``prior_column`` feature or the ``prior_linear``
        prediction, times the candidate's expected rarity with ``prior_rarity`` (sum_c hist_c / (labeled_fraction_c +
        smoothing), as ``agents.baselines.expected_rarity``: margin_balance's score from margin's column)."""
        if self.prior_linear is None:
            score = obs["candidates"][..., self.prior_column]
        else:  # in float64, so the untrained agent ranks exactly as agents.ErrorRegression does
            rows = obs["candidates"].double()
            predicted = ((rows - self.linear_mean) / self.linear_std) @ self.linear_weights
            predicted = predicted + float(self.prior_linear["intercept"])
            if self.prior_linear["floor"] is not None:
                predicted = predicted.clamp_min(float(self.prior_linear["floor"]))
            score = predicted.to(obs["candidates"].dtype)
        if self.prior_rarity is None:
            return score
        start, stop, smoothing = self.prior_rarity
        hist = obs["candidates"][..., start:stop]
        hist = hist / hist.sum(dim=-1, keepdim=True).clamp_min(1e-8)
        weights = 1.0 / (obs["labeled_class_fraction"] + smoothing)  # (B, C)
        return score * th.einsum("bknc,bc->bkn", hist, weights)

    def fitted(self, obs: PyTorchObs) -> th.Tensor:
        """The scores the TD loss fits to the reward: ``forward``'s, or V + gate x A without the prior when
        ``prior_in_loss`` is False."""
        if self.prior_in_loss:
            return self.forward(obs)
        value, advantage = self.value_and_advantage(obs)
        return value + advantage

    def value_and_advantage(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        """V(s) (B, 1, 1) and gate(KL(a)) x A(s, a) (B, K, N): the network's own parts of Q, no prior."""
        state, candidates = obs["state"], obs["candidates"]
        batch, num_regions, _ = state.shape
        _, num_pools, pool_size, candidate_dim = candidates.shape
        per_region = self.state_net(state.reshape(batch * num_regions, -1)).view(batch, num_regions)
        state_embedding = self.state_embed(per_region)
        rows = candidates.reshape(-1, candidate_dim)
        fused = th.cat(
            [
                self.candidate_net(rows[:, : -self.gate_dim]),
                state_embedding.repeat_interleave(num_pools * pool_size, dim=0),
            ],
            dim=1,
        )
        advantage = (self.fusion(fused) * self.gate(rows[:, -self.gate_dim :])).view(batch, num_pools, pool_size)
        return self.value(state_embedding).view(batch, 1, 1), advantage


class RegionQPolicy(BasePolicy):
    """Online and target query networks (like SB3's ``DQNPolicy``); acts greedily per pool over valid candidates.

    :param observation_space: Dict with "state" (S, Ds), "candidates" (K, N, Da), "action_mask" (K, N)
    :param action_space: MultiDiscrete([N] * K)
    :param lr_schedule: learning rate schedule
    :param state_net_arch: hidden widths of the per-state-region MLP (its output width is 1)
    :param state_embed_dim: width of the state-set embedding
    :param candidate_net_arch: widths of the candidate MLP (the last one is the candidate embedding)

    The default widths ([32, 16], 16, [64, 32]) are smaller than the paper's ([256, 128], 128,
    [512, 256, 128], ~0.4M parameters at CamVid sizes): fitting a reward whose per-pick signal is a
    few percent of its noise, the small network beat random on 3 of 3 training seeds, the paper's on
    2 of 3 (docs/dqn.md). Pass the paper's widths to get its network.
    :param gate_dim: trailing candidate columns that feed the gate (the 2 x 32 KL histogram bins)
    :param prior_column: candidate column of a heuristic score that Q starts from (BatchDQN's
        ``policy_kwargs=dict(prior="margin")`` finds it in the env's feature layout); None: no prior
    :param prior_scale: weight of the prior score in Q (reward points per unit of score)
    :param prior_in_loss: False (measured best, docs/dqn.md): the TD loss fits V + gate x A alone and the
        prior only biases the greedy pick; True: it fits Q with the prior in it, so the correction learns the
        rewards' departure from prior_scale x prior (and cancels the prior)
    :param prior_rarity: (first, end) of the class-histogram columns and the smoothing: the prior is
        ``prior_column`` x the candidate's expected rarity (``prior="margin_balance"`` sets it); None: the column alone
    :param prior_linear: instead of a column, a fitted error model's prediction as the prior (BatchDQN's
        ``policy_kwargs=dict(prior="model.npz")`` reads it from a ``segal-fit-error-model`` file): a dict of the
        row ``mean``, ``std`` and ``weights`` (one per candidate column), the ``intercept`` and the ``floor`` a
        rarity-weighted model puts under its prediction (None: no floor). Kept in the saved model, so the file is
        not needed to load it
    :param optimizer_class: Adam (measured: SGD, the paper's, barely moves the ranking; docs/dqn.md);
        ``th.optim.SGD`` for the paper's
    :param optimizer_kwargs: extra optimizer arguments; ``None`` gives ``momentum=0.9`` for SGD
    """

    q_net: RegionQNetwork
    q_net_target: RegionQNetwork

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.MultiDiscrete,
        lr_schedule: Schedule,
        state_net_arch: list[int] | None = None,
        state_embed_dim: int = 16,
        candidate_net_arch: list[int] | None = None,
        gate_dim: int = GATE_FEATURES,
        prior_column: int | None = None,
        prior_scale: float = 1.0,
        prior_in_loss: bool = False,
        prior_rarity: tuple[int, int, float] | None = None,
        prior_linear: dict[str, Any] | None = None,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if optimizer_kwargs is None and optimizer_class is th.optim.SGD:
            optimizer_kwargs = {"momentum": 0.9}
        super().__init__(
            observation_space,
            action_space,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            normalize_images=False,
        )
        self.net_args: dict[str, Any] = {
            "observation_space": observation_space,
            "state_net_arch": list(state_net_arch or [32, 16]),
            "state_embed_dim": state_embed_dim,
            "candidate_net_arch": list(candidate_net_arch or [64, 32]),
            "gate_dim": gate_dim,
            "prior_column": prior_column,
            "prior_scale": prior_scale,
            "prior_in_loss": prior_in_loss,
            "prior_rarity": None if prior_rarity is None else tuple(prior_rarity),
            "prior_linear": prior_linear,
        }
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        self.q_net = RegionQNetwork(**self.net_args)
        self.q_net_target = RegionQNetwork(**self.net_args)
        self.q_net_target.load_state_dict(self.q_net.state_dict())
        self.q_net_target.train(False)
        self.optimizer = self.optimizer_class(self.q_net.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[call-arg]

    def forward(self, obs: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self._predict(obs, deterministic=deterministic)

    def _predict(self, obs: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return masked_argmax(self.q_net(obs), obs["action_mask"])

    def obs_to_tensor(self, observation: dict[str, np.ndarray]) -> tuple[PyTorchObs, bool]:
        """Observations with any number of pools and candidates, not only the space's (the network scores
        every candidate alike; train mode and test mode may differ in N): batched when "candidates" has
        4 dimensions."""
        vectorized = np.ndim(observation["candidates"]) == 4
        tensors = {
            key: th.as_tensor(np.asarray(value, dtype=np.float32), device=self.device)
            for key, value in observation.items()
        }
        return (tensors if vectorized else {key: value[None] for key, value in tensors.items()}), vectorized

    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Greedy pick per pool, [K] (or [B, K] for a batch), for whatever K and N the observation has."""
        self.set_training_mode(False)
        tensors, vectorized = self.obs_to_tensor(observation)
        with th.no_grad():
            actions = self._predict(tensors, deterministic).cpu().numpy()
        return (actions if vectorized else actions[0]), state

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        del data["normalize_images"]  # raw features in [0, 1]: never image-normalised
        data.update(
            state_net_arch=self.net_args["state_net_arch"],
            state_embed_dim=self.net_args["state_embed_dim"],
            candidate_net_arch=self.net_args["candidate_net_arch"],
            gate_dim=self.net_args["gate_dim"],
            prior_column=self.net_args["prior_column"],
            prior_scale=self.net_args["prior_scale"],
            prior_in_loss=self.net_args["prior_in_loss"],
            prior_rarity=self.net_args["prior_rarity"],
            prior_linear=self.net_args["prior_linear"],
            lr_schedule=self._dummy_schedule,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
        )
        return data

    def set_training_mode(self, mode: bool) -> None:
        """Only the online network switches; the target network always uses its copied BN statistics."""
        self.q_net.train(mode)
        self.training = mode
