"""A learned error estimator: imitate the error oracle from the observation alone.

Every uncertainty rule estimates how wrong the network is on a region; ``error_oracle`` knows it (docs/oracle.md:
+0.23 +- 0.11 test points over margin on CamVid at 192 regions, nothing on synthetic). ``ErrorRegression`` learns
that error from the candidates' feature rows: a ridge regression of the true error (the share of a region's
labelled pixels the current network misclassifies, ``env.candidate_errors()``) fitted on train-mode episodes, where
the pool is D_T and reading its labels is what training may do. At test time it reads only the observation, so it
is a policy to deploy (``segal-request`` takes it), not an upper bound. Measured: on CamVid +0.34 +- 0.08 and
+0.25 +- 0.06 test points over margin at 192 and 384 regions (10 paired seeds), as much as the oracle; on
synthetic, where the oracle has no headroom, 0.35 +- 0.17 below margin (docs/oracle.md).

    model = fit_error_regression(gym.make("SegAL-Synthetic-v0"), episodes=3)   # train mode: labels readable
    model.save("error_regression.npz")
    agent = make_agent("error_regression.npz", gym.make("SegAL-Synthetic-v0", mode="test"))

The fit is closed-form (no gradient steps): on standardised rows X, weights w = (X'X + ridge I)^-1 X'y with an
unshrunk intercept; a candidate's score is its predicted error, and each pool's pick is the argmax.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from agents.baselines import BASELINES, RARITY_SMOOTHING, RegionScoreBaseline, expected_rarity
from agents.wrappers import env_attribute

if TYPE_CHECKING:
    from segal_env.layout import FeatureLayout

ERROR_FLOOR = 1e-6
"""A rarity-weighted model's floor on the predicted error: where no error is predicted the rarest class leads."""

SCALE_FLOOR = 1e-6
"""Added to every column's standard deviation, so constant columns (an always-empty class) stay finite."""


@dataclass(frozen=True)
class ErrorModel:
    """A fitted ridge regression of a candidate's true error on its feature row.

    ``mean`` and ``scale`` standardise the rows ([D] each), ``weights`` [D] and ``intercept`` give the predicted
    error; ``info`` records what it was fitted on (env id, classes, extras, rows, episodes, in-sample R^2).
    """

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    intercept: float
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def width(self) -> int:
        """The candidate-row width it reads (classes + 192 pooled entropies + extras + 64 KL bins)."""
        return int(self.weights.shape[0])

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Predicted error of every row: (..., D) -> (...)."""
        return ((rows - self.mean) / self.scale) @ self.weights + self.intercept

    def save(self, path: str | Path) -> Path:
        """Write the model as an ``.npz`` (arrays + the ``info`` JSON); loads without pickle."""
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"an error model is saved as .npz, got {path}")
        np.savez(
            path,
            mean=self.mean,
            scale=self.scale,
            weights=self.weights,
            intercept=np.array(self.intercept),
            info=np.array(json.dumps(self.info, sort_keys=True)),
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> ErrorModel:
        """Read a model written by ``save``; a file that is not one raises ValueError naming it."""
        try:
            with np.load(path, allow_pickle=False) as saved:
                model = cls(
                    saved["mean"],
                    saved["scale"],
                    saved["weights"],
                    float(saved["intercept"]),
                    json.loads(str(saved["info"])),
                )
        except Exception as error:  # noqa: BLE001 - a zip error, a missing array, bad JSON: all mean "not a model"
            raise ValueError(
                f"cannot read the error model {path}: {type(error).__name__}: {error}; write it again with "
                "segal-fit-error-model"
            ) from None
        if not model.mean.shape == model.scale.shape == model.weights.shape or model.weights.ndim != 1:
            raise ValueError(f"the error model {path} is damaged: its arrays have shapes that do not match")
        return model


def fit_ridge(
    rows: np.ndarray, target: np.ndarray, ridge: float = 1.0, info: dict[str, Any] | None = None
) -> ErrorModel:
    """Ridge regression ``target ~ rows`` on standardised columns, the intercept unshrunk ([M, D], [M] -> model)."""
    if rows.ndim != 2 or target.shape != rows.shape[:1] or not len(target):
        raise ValueError(f"need rows [M, D] and targets [M] with M >= 1, got {rows.shape} and {target.shape}")
    if not ridge > 0:
        raise ValueError(f"ridge must be > 0 (a constant column leaves the unpenalised system singular), got {ridge}")
    mean, scale = rows.mean(0), rows.std(0) + SCALE_FLOOR
    design = np.hstack([(rows - mean) / scale, np.ones((len(rows), 1))])
    penalty = ridge * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0
    solution = np.linalg.solve(design.T @ design + penalty, design.T @ target)
    model = ErrorModel(mean, scale, solution[:-1], float(solution[-1]), dict(info or {}))
    residual = target - model.predict(rows)
    spread = ((target - target.mean()) ** 2).sum()
    r2 = 1.0 - float((residual**2).sum() / spread) if spread > 0 else 0.0
    return dataclasses.replace(model, info={**model.info, "r2_fit": r2})


def collect_errors(env: gym.Env, policy: Any, episodes: int, seed: int) -> list[dict[str, Any]]:
    """Play ``episodes`` episodes of ``env`` (reset with ``seed + i``) with ``policy`` (anything with SB3's
    ``predict``); per step the episode index, the observation, its candidate rows [K, N, D], its valid-slot mask
    [K, N] and the true errors [K, N]."""
    unwrapped: Any = env.unwrapped
    if not callable(getattr(unwrapped, "candidate_errors", None)):
        raise ValueError(
            f"fitting an error model reads the true errors through env.candidate_errors(), which "
            f"{type(unwrapped).__name__} does not have: fit on a SegAL env with labels (train mode, pool D_T)"
        )
    steps = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            steps.append(
                {
                    "episode": episode,
                    "observation": obs,
                    "candidates": obs["candidates"],
                    "mask": obs["action_mask"] > 0.5,
                    "errors": unwrapped.candidate_errors(),
                }
            )
            obs, _, terminated, truncated, _ = env.step(policy.predict(obs, deterministic=True)[0])
            done = terminated or truncated
    return steps


class ErrorRegression(RegionScoreBaseline):
    """Picks, per pool, the candidate with the largest predicted error (``ErrorModel``): reads the observation only.

    A model fitted with ``rarity_weighted=True`` scores max(predicted error, 1e-6) x ``expected_rarity`` instead, as
    margin_balance weights margin: errors on regions predicted to hold under-labelled classes come first.

    :param layout: the env's ``FeatureLayout``; its classes and extras must be those the model was fitted with
    :param model: a fitted ``ErrorModel`` (or the path of one saved with ``ErrorModel.save``)
    :param class_names: the env's classes, in order; when given, they must be the model's
    :param env_config: the env's ``EnvConfig``; when given, a data set, scale, region size or network other than
        the fit's gives a warning (a model does not carry over between them: docs/benchmark_camvid.md measured
        the scale-0.5 CamVid model 0.95 +- 0.25 test points below margin at full resolution)
    """

    name = "error_regression"

    def __init__(
        self,
        layout: FeatureLayout,
        model: ErrorModel | str | Path,
        seed: int | None = 0,
        class_names: Sequence[str] | None = None,
        env_config: Any | None = None,
    ) -> None:
        super().__init__(layout, seed)
        self.model = model if isinstance(model, ErrorModel) else ErrorModel.load(model)
        self.rarity_weighted = bool(self.model.info.get("rarity_weighted", False))
        fitted = self.model.info
        expected: dict[str, Any] = {"num_classes": int(layout.num_classes), "extras": list(layout.extras)}
        if class_names is not None:  # the class-histogram columns are in this order
            expected["class_names"] = list(class_names)
        differences = [
            f"{key} {fitted[key]} in the model, {value} in this env"
            for key, value in expected.items()
            if fitted.get(key) is not None and fitted[key] != value
        ]
        if differences or self.model.width != layout.candidate_dim:
            detail = "; ".join(differences) or f"row width {self.model.width} in the model, {layout.candidate_dim} here"
            raise ValueError(
                f"the error model was fitted on another observation ({detail}); fit it on this data set's env "
                "(segal-fit-error-model with the same --env-kwargs)"
            )
        fitted_settings = fitted.get("env_settings")
        if env_config is not None and fitted_settings:
            here = env_settings(env_config)
            moved = [
                f"{key} {fitted_settings.get(key)} -> {here[key]}"
                for key in here
                if fitted_settings.get(key) != here[key]
            ]
            if moved:
                warnings.warn(
                    f"the error model was fitted on other env settings ({', '.join(moved)}): its error estimates "
                    "may not carry over and it can then fall behind the rule it learned from; fit one on this "
                    "env (segal-fit-error-model with its --env-kwargs)",
                    UserWarning,
                    stacklevel=2,
                )

    def score(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        error = self.model.predict(obs["candidates"])
        if self.rarity_weighted:  # a negative error times the weight would put common classes first: floor it
            return np.maximum(error, ERROR_FLOOR) * expected_rarity(self.layout, obs, RARITY_SMOOTHING)
        return error


def error_regression_for(env: Any, path: str | Path, seed: int | None = 0) -> ErrorRegression:
    """The model saved at ``path`` as a policy on ``env`` (an env, wrapped or not, or a VecEnv), checked against
    the env's feature layout and class names, and warning when its settings differ from the fit's."""
    return ErrorRegression(
        env_attribute(env, "feature_layout"),
        path,
        seed=seed,
        class_names=env_attribute(env, "class_names", None),
        env_config=env_attribute(env, "config", None),
    )


def env_settings(config: Any) -> dict[str, Any]:
    """The settings of an ``EnvConfig`` that change what a candidate row means: a fit records them, a user is
    warned when they differ (``ErrorRegression(env_config=...)``)."""
    return {
        "dataset": config.dataset,
        "scale": float(config.scale),
        "region_size": [int(v) for v in config.region_size],
        "model": config.model,
    }


def check_fit_settings(episodes: int, rounds: int, ridge: float, behaviour: str) -> None:
    """The settings of ``fit_error_regression`` that need no env, checked before one is built (ValueError)."""
    if episodes < 1 or rounds < 1:
        raise ValueError(f"episodes and rounds must be >= 1, got {episodes} and {rounds}")
    if not ridge > 0:
        raise ValueError(f"ridge must be > 0, got {ridge}")
    if behaviour not in BASELINES:
        raise ValueError(f"unknown behaviour rule {behaviour!r}; choose among {list(BASELINES)}")


def fit_error_regression(
    env: gym.Env,
    episodes: int = 3,
    seed: int = 0,
    behaviour: str = "margin",
    ridge: float = 1.0,
    rounds: int = 1,
    rarity_weighted: bool = False,
) -> ErrorModel:
    """Fit an ``ErrorModel`` on ``episodes`` episodes of ``env`` played by the rule ``behaviour``.

    ``rounds`` > 1 is DAgger: each further round plays ``episodes`` new episodes (seeds continue) with the model
    fitted so far and refits on all the steps read, so the model also learns the states its own picks lead to.
    ``rarity_weighted`` makes the policy weight its predicted errors by the candidates' expected rarity
    (``ErrorRegression``); the regression is the same, so with ``rounds=1`` only ``info`` differs.
    ``env`` must be able to read its pool's labels: a SegAL env in train mode (pool D_T). Fitting on a test-mode
    env would read D_V's labels, which the benchmark then scores on: ``mode="test"`` is refused.
    """
    config = env.get_wrapper_attr("config")
    if getattr(config, "mode", "train") != "train":
        raise ValueError(
            f"fit the error model in train mode (pool D_T), not mode={config.mode!r}: the test pool's labels are "
            "what the benchmark scores the policy on"
        )
    check_fit_settings(episodes, rounds, ridge, behaviour)
    started = time.perf_counter()
    layout = env.get_wrapper_attr("feature_layout")
    policy: RegionScoreBaseline = BASELINES[behaviour](layout, seed=seed)
    steps: list[dict[str, Any]] = []
    for round_ in range(rounds):
        steps += collect_errors(env, policy, episodes, seed + round_ * episodes)
        rows = np.concatenate([s["candidates"][s["mask"]] for s in steps])
        target = np.concatenate([s["errors"][s["mask"]] for s in steps])
        model = fit_ridge(rows, target, ridge, info={"rarity_weighted": rarity_weighted})
        policy = ErrorRegression(layout, model)
    info = {
        "env_id": getattr(env.spec, "id", None),
        "env_settings": env_settings(config),
        "num_classes": int(layout.num_classes),
        "class_names": list(getattr(env.unwrapped, "class_names", None) or []) or None,
        "extras": list(layout.extras),
        "episodes": episodes,
        "rounds": rounds,
        "seed": seed,
        "behaviour": behaviour,
        "ridge": ridge,
        "rows": int(len(target)),
        "target": "error",
        "rarity_weighted": rarity_weighted,
        "fit_seconds": round(time.perf_counter() - started, 1),
    }
    return dataclasses.replace(model, info={**model.info, **info})
