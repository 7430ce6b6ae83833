"""One entry point for benchmarks: a baseline name or a saved model, as an object with SB3's ``predict``."""

from __future__ import annotations

import functools
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import gymnasium as gym
import numpy as np
from sb3_contrib import MaskablePPO
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.vec_env import VecEnv

from agents.baselines import BASELINES, RegionScoreBaseline
from agents.batch_dqn import BatchDQN
from agents.batch_dqn.policies import GATE_FEATURES
from agents.error_regression import error_regression_for
from agents.oracle import ErrorOracle, LookaheadOracle
from agents.wrappers import env_attribute

# policies that read the true labels (upper bounds for benchmarks): make_agent builds them only on an env
# with labels, and segal-request never offers them
# "oracle_x3" averages each look-ahead over 3 fine-tuning seeds; the error oracles pick the region the network
# truly gets most wrong (docs/oracle.md)
PRIVILEGED_POLICIES: dict[str, Callable[..., LookaheadOracle | ErrorOracle]] = {
    "oracle": LookaheadOracle,
    "oracle_x3": functools.partial(LookaheadOracle, repeats=3),
    "error_oracle": ErrorOracle,
    "loss_oracle": functools.partial(ErrorOracle, kind="loss"),
    "balanced_error_oracle": functools.partial(ErrorOracle, balanced=True),
}

if TYPE_CHECKING:
    from segal_env.layout import FeatureLayout

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {
    "BatchDQN": BatchDQN,
    "MaskablePPO": MaskablePPO,
    "PPO": PPO,
    "A2C": A2C,
    "DQN": DQN,
}


def feature_layout(env: gym.Env | VecEnv) -> FeatureLayout:
    """The env's ``FeatureLayout``, through wrappers and VecEnvs."""
    return env_attribute(env, "feature_layout")


def detect_algorithm(path: str | Path) -> type[BaseAlgorithm] | None:
    """The SB3 class that saved ``path``, read from the policy class recorded in the zip's "data"."""
    with zipfile.ZipFile(path) as archive:
        data = json.loads(archive.read("data"))
    module = data.get("policy_class", {}).get("__module__", "")
    if module.startswith("agents.batch_dqn"):
        return BatchDQN
    if module.startswith("sb3_contrib.common.maskable"):
        return MaskablePPO
    if module.startswith("stable_baselines3.dqn"):
        return DQN
    if module.startswith("stable_baselines3.common.policies"):  # shared by PPO and A2C
        return PPO if "clip_range" in data else A2C
    return None


class MaskedPredictor:
    """Gives a MaskablePPO model the plain ``predict`` signature, reading the masks from
    ``obs["action_mask"]`` (SB3's ``evaluate_policy`` passes no masks)."""

    def __init__(self, model: MaskablePPO) -> None:
        self.model = model

    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        mask = observation["action_mask"]
        batched = mask.ndim == 3
        flat_mask = mask.reshape(mask.shape[0], -1) if batched else mask.reshape(-1)
        return self.model.predict(observation, state, episode_start, deterministic, action_masks=flat_mask > 0.5)


def _load_model(path: Path, env: gym.Env | VecEnv, device: str) -> BaseAlgorithm:
    """Load a saved agent against ``env``; every failure becomes one ValueError naming the file, the
    policy that saved it and what differs (``load_failure_message``)."""
    try:
        return _load_model_unchecked(path, env, device)
    except Exception as error:  # noqa: BLE001 - re-raised with the file, the policy and the setting named
        raise ValueError(load_failure_message(path, env, error)) from error


# what decides each dimension of the observation (segal_env.layout.FeatureLayout, SegALEnv's spaces)
_CLASSES = "the number of classes (another data set or class mapping)"
_STATE_REGIONS = "the state set's region count (role_sizes['d_s'], region_size or scale)"


def _saved_policy(path: Path) -> tuple[str, dict[str, Any] | None]:
    """('BatchDQN / RegionQPolicy', the saved observation space's shapes) as far as the file can be read."""
    data = load_from_zip_file(path, load_data=True, device="cpu")[0] or {}
    policy_class = data.get("policy_class")
    policy = getattr(policy_class, "__name__", None) or "unknown policy"
    algorithm = detect_algorithm(path)
    label = f"{algorithm.__name__} / {policy}" if algorithm is not None else policy
    space = data.get("observation_space")
    shapes = (
        {key: tuple(sub.shape) for key, sub in space.spaces.items()} if isinstance(space, gym.spaces.Dict) else None
    )
    return label, shapes


def _space_differences(saved: dict[str, tuple[int, ...]], env: gym.Env | VecEnv) -> list[str]:
    """The env settings behind each observation dimension that differs between the saved agent and ``env``."""
    space = env.observation_space
    if not isinstance(space, gym.spaces.Dict):
        return []
    current = {key: tuple(sub.shape) for key, sub in space.spaces.items()}
    if set(saved) != set(current):
        return [f"observation keys {sorted(saved)} in the file, {sorted(current)} in this env"]
    differences = []
    if "labeled_class_fraction" in saved and saved["labeled_class_fraction"] != current["labeled_class_fraction"]:
        differences.append(
            f"{_CLASSES}: {saved['labeled_class_fraction'][0]} -> {current['labeled_class_fraction'][0]}"
        )
    if "state" in saved and "candidates" in saved:
        saved_extras = saved["candidates"][-1] - saved["state"][-1] - GATE_FEATURES
        extras = current["candidates"][-1] - current["state"][-1] - GATE_FEATURES
        if saved_extras != extras:
            names = list(feature_layout(env).extras)
            differences.append(
                f"extra_features: the agent was trained with {saved_extras} extra feature(s), this env "
                f"has {extras} ({names}); create the env with the agent's extra_features"
            )
        if saved["state"][0] != current["state"][0]:
            differences.append(f"{_STATE_REGIONS}: {saved['state'][0]} -> {current['state'][0]} regions")
        if saved["candidates"][:2] != current["candidates"][:2]:
            (k0, n0), (k1, n1) = saved["candidates"][:2], current["candidates"][:2]
            differences.append(
                f"num_pools / pool_size: {k0} x {n0} -> {k1} x {n1} (only BatchDQN acts on other pool "
                "counts and sizes; give this env the training pools)"
            )
    return differences


def load_failure_message(path: Path, env: gym.Env | VecEnv, error: BaseException) -> str:
    """Why ``path`` cannot act in ``env``, naming the file, the policy and the env setting that differs."""
    reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    try:
        policy, saved = _saved_policy(path)
    except Exception as unreadable:  # noqa: BLE001 - zipfile.BadZipFile, KeyError, EOFError, pickle errors, ...
        detail = str(unreadable).strip() or type(unreadable).__name__
        return (
            f"cannot load the saved agent {path}: the file is not a complete SB3 model zip ({detail}); "
            "it may be truncated or corrupt: save or copy it again"
        )
    differences = _space_differences(saved, env) if saved else []
    if differences:
        return (
            f"cannot load the saved agent {path} ({policy}) into this env; it was trained with other "
            f"settings: {'; '.join(differences)}"
        )
    return f"cannot load the saved agent {path} ({policy}) into this env: {reason}"


def _load_model_unchecked(path: Path, env: gym.Env | VecEnv, device: str) -> BaseAlgorithm:
    algorithm = detect_algorithm(path)
    # BatchDQN's weights do not depend on the pool count/size: adopt the env's spaces (e.g. N=10 at test)
    spaces_of_env: dict[str, Any] = {"observation_space": env.observation_space, "action_space": env.action_space}
    if algorithm is BatchDQN:
        return BatchDQN.load(path, env=env, device=device, custom_objects=spaces_of_env)
    if algorithm is not None:
        return algorithm.load(path, env=env, device=device)
    errors = []
    for name, candidate in ALGORITHMS.items():
        try:
            return candidate.load(path, env=env, device=device)
        except Exception as error:  # noqa: BLE001 - any failure means "not this class"
            errors.append(f"{name}: {error}")
    raise ValueError(f"could not load {path} with any of {list(ALGORITHMS)}:\n" + "\n".join(errors))


def saved_model_path(name_or_path: str | Path) -> Path | None:
    """The file of a saved model (".zip" may be left out, "~" is expanded), or None when there is none."""
    path = Path(name_or_path).expanduser()
    if not path.is_file() and Path(f"{path}.zip").is_file():
        path = Path(f"{path}.zip")
    return path if path.is_file() else None


def make_agent(
    name_or_path: str | Path, env: gym.Env | VecEnv, seed: int = 0, device: str = "auto"
) -> RegionScoreBaseline | BaseAlgorithm | MaskedPredictor | LookaheadOracle | ErrorOracle:
    """A labelling policy with ``predict(obs, state=None, episode_start=None, deterministic=False)``.

    :param name_or_path: a baseline name (``agents.BASELINES``), a label-reading upper bound
        (``PRIVILEGED_POLICIES``: "oracle", the look-ahead, or "error_oracle" and its variants; SegAL envs only)
        or the path of a model saved by BatchDQN, PPO, A2C, DQN or MaskablePPO (".zip" may be left out), or of
        an error model (".npz", ``segal-fit-error-model``: ``agents.ErrorRegression``)
    :param env: the env the agent will act in (a Gymnasium env or a VecEnv): baselines read its
        ``feature_layout``, models are loaded against its spaces
    :param seed: seed of the baselines' own generator (only "random" draws from it); loaded models
        are left unseeded: call ``predict(..., deterministic=True)`` for their greedy policy
    :param device: torch device of a loaded model
    """
    if str(name_or_path) in BASELINES:
        return BASELINES[str(name_or_path)](feature_layout(env), seed=seed)
    if str(name_or_path) in PRIVILEGED_POLICIES:
        if isinstance(env, VecEnv):
            raise ValueError(f"{name_or_path!r} reads one env's true labels: give it the env itself, not a VecEnv")
        return PRIVILEGED_POLICIES[str(name_or_path)](env, seed=seed)
    path = saved_model_path(name_or_path)
    if path is None:
        raise ValueError(
            f"unknown agent {str(name_or_path)!r}: not a baseline name ({', '.join(BASELINES)}), not "
            f"{' or '.join(repr(p) for p in PRIVILEGED_POLICIES)} "
            "and not the path of a saved model"
        )
    if path.suffix == ".npz":
        return error_regression_for(env, path, seed=seed)
    model = _load_model(path, env, device)
    return MaskedPredictor(model) if isinstance(model, MaskablePPO) else model
