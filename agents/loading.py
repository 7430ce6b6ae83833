"""One entry point for benchmarks: a baseline name or a saved model, as an object with SB3's ``predict``."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from sb3_contrib import MaskablePPO
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from agents.baselines import BASELINES, RegionScoreBaseline
from agents.batch_dqn import BatchDQN
from agents.oracle import LookaheadOracle

# policies that read the true labels (upper bounds for benchmarks): make_agent builds them only on an env
# with labels, and segal-request never offers them
PRIVILEGED_POLICIES: dict[str, type[LookaheadOracle]] = {"oracle": LookaheadOracle}

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
    if isinstance(env, VecEnv):
        return env.get_attr("feature_layout")[0]
    return env.get_wrapper_attr("feature_layout")


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
) -> RegionScoreBaseline | BaseAlgorithm | MaskedPredictor | LookaheadOracle:
    """A labelling policy with ``predict(obs, state=None, episode_start=None, deterministic=False)``.

    :param name_or_path: a baseline name (``agents.BASELINES``), "oracle" (the look-ahead upper bound, which
        reads the true labels: SegAL envs only) or the path of a model saved by BatchDQN, PPO, A2C, DQN or
        MaskablePPO (".zip" may be left out)
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
            raise ValueError(f"{name_or_path!r} steps one env's look-ahead: give it the env itself, not a VecEnv")
        return PRIVILEGED_POLICIES[str(name_or_path)](env, seed=seed)
    path = saved_model_path(name_or_path)
    if path is None:
        raise ValueError(
            f"unknown agent {str(name_or_path)!r}: not a baseline name ({', '.join(BASELINES)}), not "
            f"{' or '.join(repr(p) for p in PRIVILEGED_POLICIES)} "
            "and not the path of a saved model"
        )
    model = _load_model(path, env, device)
    return MaskedPredictor(model) if isinstance(model, MaskablePPO) else model
