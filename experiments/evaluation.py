"""Evaluation while training (``train.py --eval-freq N``): SB3's EvalCallback on a test-mode env.

Three changes to SB3's callback, for active learning:

- every evaluation plays the *same* episodes (the eval env is re-seeded with ``seed`` before each one), so
  two evaluations differ by the agent only, not by which pools the episodes drew;
- the best model is the one with the highest mean return, the reward-set (D_R) gain: model selection never
  looks at the test split. It is written atomically to ``best_model.zip``;
- the test mIoU at the end of each evaluation episode is logged (``eval/test_miou``) and written with the
  returns to ``evaluations.json`` (atomically, after every evaluation).

MaskablePPO gets the same on top of sb3-contrib's MaskableEvalCallback, which passes the action masks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback, StopTrainingOnNoModelImprovement

from experiments.checkpoints import save_model
from segal_env.storage import atomic_write_json


class SaveBestModel(BaseCallback):
    """Called by the evaluation callback on a new best mean return: saves the model atomically."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)

    def _on_step(self) -> bool:
        save_model(self.model, self.path)
        return True


# the mixin is typed as the callback it extends (for the type checker only: at run time it must stay a plain
# mixin, so that the same code sits over EvalCallback and MaskableEvalCallback)
_MixinBase: Any = EvalCallback if TYPE_CHECKING else object


class _SameEpisodesEvaluation(_MixinBase):
    """Mixin over SB3's (Maskable)EvalCallback; see the module docstring."""

    def __init__(self, *args: Any, episode_seed: int, record_path: Path, resume: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.episode_seed = episode_seed
        self.record_path = Path(record_path)
        self.records: list[dict[str, Any]] = []
        if resume and self.record_path.is_file():  # a resumed run keeps its evaluations and the best return to beat
            self.records = json.loads(self.record_path.read_text())["evaluations"]
            self.best_mean_reward = max((r["mean_return"] for r in self.records), default=-np.inf)
        self._test_mious: list[float] = []
        self._returns: list[float] = []

    def _on_step(self) -> bool:
        evaluating = self.eval_freq > 0 and self.n_calls % self.eval_freq == 0
        if evaluating:
            self.eval_env.seed(self.episode_seed)  # the next reset of env i uses seed + i
            self._test_mious, self._returns = [], []
        keep_training = super()._on_step()
        if evaluating:
            self.records.append(
                {
                    "timesteps": int(self.num_timesteps),
                    "returns": self._returns,
                    "test_miou": self._test_mious,
                    "mean_return": float(np.mean(self._returns)),
                    "mean_test_miou": float(np.mean(self._test_mious)) if self._test_mious else None,
                    "best_mean_return": float(self.best_mean_reward),
                }
            )
            atomic_write_json({"episode_seed": self.episode_seed, "evaluations": self.records}, self.record_path)
        return keep_training

    def _log_success_callback(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        super()._log_success_callback(locals_, globals_)
        if not locals_["done"]:
            return
        info = locals_["info"]
        # Monitor's episode return when the env has one, else evaluate_policy's running sum for this env
        self._returns.append(
            float(info["episode"]["r"]) if "episode" in info else float(locals_["current_rewards"][locals_["i"]])
        )
        if "test_miou" in info:
            self._test_mious.append(float(info["test_miou"]))
        if len(self._returns) == self.n_eval_episodes and self._test_mious:
            # recorded before EvalCallback dumps the logger, so it lands on this evaluation's row
            self.logger.record("eval/test_miou", float(np.mean(self._test_mious)))


class SameEpisodesEvalCallback(_SameEpisodesEvaluation, EvalCallback):
    """EvalCallback that replays the same episodes at every evaluation (module docstring)."""


class MaskableSameEpisodesEvalCallback(_SameEpisodesEvaluation, MaskableEvalCallback):
    """MaskableEvalCallback that replays the same episodes at every evaluation (module docstring)."""


def periodic_evaluation(
    model: BaseAlgorithm,
    eval_env: Any,
    out: Path,
    eval_freq: int,
    episodes: int,
    seed: int,
    patience: int = 0,
    resume: bool = False,
    verbose: int = 0,
) -> EvalCallback:
    """The callback for ``model.learn``: evaluates every ``eval_freq`` env steps on ``episodes`` episodes
    (seeds ``seed + i``), keeps ``out/best_model.zip`` and ``out/evaluations.json`` (a resumed run continues
    both); with ``patience`` > 0 training stops after that many evaluations without a better mean return."""
    cls = MaskableSameEpisodesEvalCallback if isinstance(model, MaskablePPO) else SameEpisodesEvalCallback
    stop = StopTrainingOnNoModelImprovement(patience, verbose=verbose) if patience > 0 else None
    return cls(
        eval_env,
        n_eval_episodes=episodes,
        eval_freq=max(eval_freq // model.n_envs, 1),
        best_model_save_path=None,  # SaveBestModel writes it atomically
        callback_on_new_best=SaveBestModel(Path(out) / "best_model.zip"),
        callback_after_eval=stop,
        deterministic=True,
        verbose=verbose,
        episode_seed=seed,
        record_path=Path(out) / "evaluations.json",
        resume=resume,
    )
