"""One benchmark run: one labelling policy, one seed, the environment's test mode up to the largest budget.

A run is described by a picklable :class:`RunSpec` (it travels to worker processes and Ray tasks as
is) and produces a JSON-able result record (see :data:`SCHEMA_VERSION` and docs/benchmark.md). The
run itself never writes files: the driver does, so every backend stores results the same way.

Identical starting conditions per seed: every policy gets a fresh environment built from the same
kwargs, ``reset(seed=seed)`` (the same cached starting network and the same first candidate pools),
and ``make_agent(policy, env, seed=seed)`` (only "random" draws from that seed).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import torch

import segal_env  # noqa: F401 - registers the SegAL ids
from agents import make_agent
from experiments.episodes import play_episode
from experiments.provenance import provenance
from segal_env import SegALEnv
from segal_env.config import EnvConfig

SCHEMA_VERSION = 1
RESULT_KIND = "segal-benchmark-run"

# env kwargs the benchmark sets itself (one per run) and never takes from the user
CONTROLLED_KWARGS = ("mode", "budget", "eval_budgets", "final_training")
# env settings that cannot change the numbers: left out of the fingerprint a resumed benchmark compares
# (where files go, what is printed or rendered, and where it runs: a run is a pure function of the others;
# the starting network's D_R mIoU, compared beside the fingerprint, catches a device that would differ)
NON_RESULT_KWARGS = ("cache_dir", "device", "verbose", "render_mode", "timing_in_info")

ProgressFn = Callable[[dict], None]


@dataclass
class RunSpec:
    """Everything a worker needs to run one (policy, seed) episode.

    :param env_id: a registered Gymnasium id (``import segal_env`` registers the SegAL ones)
    :param env_kwargs: user kwargs of ``gym.make`` (JSON-able; without the CONTROLLED_KWARGS)
    :param policy: label used in file names, tables and plots
    :param policy_source: a baseline name (``agents.BASELINES``) or the path of a saved model
    :param seed: episode seed (env reset and the baseline's generator)
    :param budgets: labeled-region counts at which the test split is scored, ascending (checked once, by
        the protocol); the run ends at the largest
    :param final_training: train a copy of the network for ``final_steps`` (fixed length, no early stopping)
        on the acquired regions before each test evaluation
    :param device: torch device ("auto", "cpu", "cuda:1", ...); a backend may replace "auto"
    :param torch_threads: ``torch.set_num_threads`` inside the run (None: leave as is)
    :param policy_sha256: hash of a model file (filled in by :func:`make_specs`), for provenance
    """

    env_id: str
    env_kwargs: dict
    policy: str
    policy_source: str
    seed: int
    budgets: list[int]
    final_training: bool = False
    device: str = "auto"
    torch_threads: int | None = None
    policy_sha256: str | None = None

    @property
    def run_id(self) -> str:
        return run_id(self.policy, self.seed)

    @property
    def max_budget(self) -> int:
        return max(self.budgets)

    def gym_kwargs(self) -> dict:
        """The full kwargs of ``gym.make`` for this run."""
        kwargs = dict(self.env_kwargs)
        kwargs.update(
            mode="test",
            budget=self.max_budget,
            eval_budgets=list(self.budgets),
            final_training=self.final_training,
            device=self.device,
        )
        return kwargs

    def to_dict(self) -> dict:
        return asdict(self)


def sanitize_label(label: str) -> str:
    """A file-name-safe policy label (letters, digits, '.', '_', '-')."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", str(label)).strip("._")
    return clean or "policy"


def run_id(policy: str, seed: int) -> str:
    return f"{sanitize_label(policy)}__seed{int(seed)}"


def file_sha256(path: str | os.PathLike, length: int = 16) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def comparable_config(record_or_spec: dict) -> dict:
    """The part of a spec / result that determines the numbers (used to refuse mixing configurations)."""
    kwargs = {k: v for k, v in record_or_spec["env_kwargs"].items() if k not in NON_RESULT_KWARGS}
    return {
        "env_id": record_or_spec["env_id"],
        "env_kwargs": kwargs,
        "budgets": sorted(int(b) for b in record_or_spec["budgets"]),
        "final_training": bool(record_or_spec["final_training"]),
    }


def env_settings(config: EnvConfig) -> dict:
    """The fingerprint of an env's effective settings: ``EnvConfig.to_dict()`` without the settings that
    cannot change the numbers (:data:`NON_RESULT_KWARGS`). Every other setting counts, so a resumed
    benchmark notices a change of any of them (``reward``, ``lr_decay``, a preset default, ...)."""
    return {key: value for key, value in config.to_dict().items() if key not in NON_RESULT_KWARGS}


def _set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(int(threads))


def _make_env(spec: RunSpec) -> gym.Env:
    return gym.make(spec.env_id, **spec.gym_kwargs())


def describe_env(spec: RunSpec, check_policies: list[tuple[str, str]] | None = None) -> dict:
    """Build the env once and reset it: pre-trains (and caches) the starting network before the
    runs fan out, checks the configuration, and returns what the driver needs (class names, K, N).

    ``check_policies``: (label, source) pairs to load against the env, so a model that does not fit
    the env's spaces fails here, before any run starts.
    """
    _set_threads(spec.torch_threads)
    env = _make_env(spec)
    try:
        _, info = env.reset(seed=spec.seed)
        base: SegALEnv = env.unwrapped  # type: ignore[assignment]
        for label, source in check_policies or []:
            try:
                make_agent(source, base, seed=spec.seed, device=spec.device)
            except Exception as error:  # noqa: BLE001 - re-raised with the policy named
                raise ValueError(f"policy {label!r} ({source}) cannot act in {spec.env_id}: {error}") from error
        return {
            "class_names": [str(c) for c in base.class_names],
            "num_pools": base.config.num_pools,
            "pool_size": base.config.pool_size,
            "start_reward_set_miou": float(info["miou"]),  # a fingerprint of the cached starting network
            "device": str(getattr(base, "device", spec.device)),
            "env_settings": env_settings(base.config),
        }
    finally:
        env.close()


def settings_differences(stored: dict, current: dict, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Dotted key -> (stored, current) for every setting that differs; nested dicts are compared key by key
    (``env_kwargs.reward``, ``dataset_kwargs.n_train``). Values compare exactly: a learning rate of 1e-4 is
    not 1.0001e-4. A setting added after a record was written matches the record when it is None (off: the
    behaviour before it existed)."""
    differences: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(stored) | set(current), key=str):
        a, b = stored.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            differences.update(settings_differences(a, b, f"{prefix}{key}."))
        elif a != b or ((key in stored) != (key in current) and (a, b) != (None, None)):
            differences[f"{prefix}{key}"] = (a, b)
    return differences


def describe_differences(differences: dict[str, tuple[Any, Any]]) -> str:
    """``reward: 'gain' -> 'gain_over_random', lr_decay: True -> False``."""
    return ", ".join(f"{key}: {a!r} -> {b!r}" for key, (a, b) in differences.items())


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def run_episode(spec: RunSpec, progress: ProgressFn | None = None) -> dict:
    """Run one (policy, seed) episode to the largest budget and return its result record.

    ``progress`` receives small dicts: {"event": "start"|"step"|"done", "run": run_id, "step", "steps",
    "labeled", "next_budget", "test_miou" (at budgets)}; it must be cheap (it is called every step).
    """
    notify = progress or (lambda event: None)
    _set_threads(spec.torch_threads)
    started, wall0 = _dt.datetime.now(_dt.timezone.utc), time.perf_counter()
    env = _make_env(spec)
    try:
        base: SegALEnv = env.unwrapped  # type: ignore[assignment]
        agent = make_agent(spec.policy_source, base, seed=spec.seed, device=spec.device)
        num_pools = base.config.num_pools
        steps = base.config.steps_per_episode  # the env's budget is the largest of the (sorted) budgets
        budgets = list(spec.budgets)
        notify(
            {"event": "start", "run": spec.run_id, "step": 0, "steps": steps, "labeled": 0, "next_budget": budgets[0]}
        )
        trace: dict[str, list] = {"regions_labeled": [], "reward_set_miou": [], "reward": [], "step_time_s": []}
        entries: list[dict] = []

        def record_step(obs, action, reward: float, info: dict) -> None:
            step, labeled = len(trace["reward"]) + 1, int(info["regions_labeled"])
            trace["regions_labeled"].append(labeled)
            trace["reward_set_miou"].append(float(info["miou"]))
            trace["reward"].append(float(reward))
            trace["step_time_s"].append(float(base.last_timing.get("total", float("nan"))))
            event = {"event": "step", "run": spec.run_id, "step": step, "steps": steps, "labeled": labeled}
            if "test_miou" in info and labeled in budgets:
                entries.append(
                    {
                        "budget": labeled,
                        "step": step,
                        "test_miou": float(info["test_miou"]),
                        "test_per_class_iou": [float(v) for v in info["test_per_class_iou"]],
                        "reward_set_miou": float(info["miou"]),
                        "reward_set_per_class_iou": [float(v) for v in info["per_class_iou"]],
                        # D_R mIoU of the network scored on test (after the final training), where the env says
                        "reward_set_final_miou": _optional_float(info.get("reward_set_final_miou")),
                        "labeled_pixels_per_class": [int(v) for v in info["labeled_pixels_per_class"]],
                        "elapsed_s": time.perf_counter() - wall0,
                    }
                )
                event["test_miou"] = float(info["test_miou"])
                event["budget"] = labeled
            upcoming = [b for b in budgets if b > labeled]
            event["next_budget"] = upcoming[0] if upcoming else None
            notify(event)

        episode = play_episode(agent, env, spec.seed, on_step=record_step)
        start_miou, info_start = float(episode.start_info["miou"]), episode.start_info
        step, labeled = len(episode.rewards), int(episode.final_info["regions_labeled"])
        missing = sorted(set(budgets) - {e["budget"] for e in entries})
        if missing:
            raise RuntimeError(
                f"{spec.env_id} ended at {labeled} labeled regions without test results for budgets {missing}; "
                "budgets must be multiples of num_pools and the env must report test_miou in test mode"
            )
        record = {
            "schema_version": SCHEMA_VERSION,
            "kind": RESULT_KIND,
            "run_id": spec.run_id,
            "env_id": spec.env_id,
            "env_kwargs": dict(spec.env_kwargs),
            "gym_kwargs": spec.gym_kwargs(),
            "policy": spec.policy,
            "policy_source": spec.policy_source,
            "policy_sha256": spec.policy_sha256,
            "seed": int(spec.seed),
            "budgets": budgets,
            "final_training": bool(spec.final_training),
            "class_names": [str(c) for c in base.class_names],
            "num_pools": num_pools,
            "pool_size": base.config.pool_size,
            "start": {"reward_set_miou": start_miou, "test_miou": info_start.get("start_test_miou")},
            "env_settings": env_settings(base.config),
            "entries": entries,
            "trace": trace,
            "wall_time_s": time.perf_counter() - wall0,
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "device": str(getattr(base, "device", spec.device)),
            "torch_threads": int(torch.get_num_threads()),
            "host": socket.gethostname(),
            "versions": provenance(getattr(base, "device", spec.device)),
        }
        notify(
            {
                "event": "done",
                "run": spec.run_id,
                "step": step,
                "steps": steps,
                "labeled": labeled,
                "test_miou": entries[-1]["test_miou"],
                "wall_time_s": record["wall_time_s"],
            }
        )
        return record
    finally:
        env.close()


# ---- result files --------------------------------------------------------------------------------
def result_path(out_dir: str | os.PathLike, spec_or_id: RunSpec | str) -> Path:
    rid = spec_or_id.run_id if isinstance(spec_or_id, RunSpec) else str(spec_or_id)
    return Path(out_dir) / "runs" / f"{rid}.json"


def is_complete(record: Any) -> bool:
    """A stored record that a resumed benchmark may skip."""
    return (
        isinstance(record, dict)
        and record.get("kind") == RESULT_KIND
        and record.get("schema_version") == SCHEMA_VERSION
        and isinstance(record.get("entries"), list)
        and {int(e["budget"]) for e in record["entries"]} >= {int(b) for b in record.get("budgets", [])}
    )
