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
import platform
import re
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

SCHEMA_VERSION = 1
RESULT_KIND = "segal-benchmark-run"

# env kwargs the benchmark sets itself (one per run) and never takes from the user
CONTROLLED_KWARGS = ("mode", "budget", "eval_budgets", "final_training")
# env kwargs that do not change the numbers: ignored when a stored result is compared with a new request
NON_RESULT_KWARGS = ("cache_dir", "device", "verbose", "render_mode")

ProgressFn = Callable[[dict], None]


@dataclass
class RunSpec:
    """Everything a worker needs to run one (policy, seed) episode.

    :param env_id: a registered Gymnasium id (``import segal_env`` registers the SegAL ones)
    :param env_kwargs: user kwargs of ``gym.make`` (JSON-able; without the CONTROLLED_KWARGS)
    :param policy: label used in file names, tables and plots
    :param policy_source: a baseline name (``agents.BASELINES``) or the path of a saved model
    :param seed: episode seed (env reset and the baseline's generator)
    :param budgets: labeled-region counts at which the test split is scored; the run ends at the largest
    :param final_training: train a copy of the network to convergence before each test evaluation
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
            eval_budgets=sorted(self.budgets),
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


def _set_threads(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(int(threads))


def _make_env(spec: RunSpec):
    import gymnasium as gym

    import segal_env  # noqa: F401 - registers the SegAL ids

    return gym.make(spec.env_id, **spec.gym_kwargs())


def describe_env(spec: RunSpec, check_policies: list[tuple[str, str]] | None = None) -> dict:
    """Build the env once and reset it: pre-trains (and caches) the starting network before the
    runs fan out, checks the configuration, and returns what the driver needs (class names, K, N).

    ``check_policies``: (label, source) pairs to load against the env, so a model that does not fit
    the env's spaces fails here, before any run starts.
    """
    from agents import make_agent

    _set_threads(spec.torch_threads)
    env = _make_env(spec)
    try:
        _, info = env.reset(seed=spec.seed)
        base = env.unwrapped
        for label, source in check_policies or []:
            try:
                make_agent(source, base, seed=spec.seed, device=spec.device)
            except Exception as error:  # noqa: BLE001 - re-raised with the policy named
                raise ValueError(f"policy {label!r} ({source}) cannot act in {spec.env_id}: {error}") from error
        return {
            "class_names": [str(c) for c in base.class_names],
            "num_pools": base.config.num_pools,
            "pool_size": base.config.pool_size,
            "start_reward_set_miou": float(info["miou"]),
            "device": str(getattr(base, "device", spec.device)),
            "resolved": resolved_env(base, float(info["miou"])),
        }
    finally:
        env.close()


# effective env settings recorded with every result: user kwargs alone do not pin them (the presets
# fill in everything left at None and may change between versions), so a resumed benchmark compares
# them before mixing old and new runs. The keys of results written before env.config existed.
RESOLVED_KEYS = (
    "model", "finetune", "finetune_epochs", "lr", "optimizer", "batch_size", "freeze_bn", "num_pools", "pool_size",
    "budget", "region_size", "crop_size", "extra_features", "mc_samples", "start_set", "reward_scale", "final_steps",
)


def resolved_env(base, start_reward_set_miou: float) -> dict:
    """The env's effective settings (``env.unwrapped.config``) and its starting D_R mIoU, a fingerprint of
    the cached starting network."""
    config = base.config.to_dict()
    return {**{key: config[key] for key in RESOLVED_KEYS}, "start_reward_set_miou": float(start_reward_set_miou)}


def resolved_differences(stored: dict | None, current: dict, tolerance: float = 1e-3) -> dict:
    """key -> (stored, current) for settings that differ; floats within ``tolerance`` are equal (the
    starting mIoU may move in the last digits between devices)."""
    if not stored:
        return {}
    differences = {}
    for key in sorted(set(stored) | set(current)):
        a, b = stored.get(key), current.get(key)
        if isinstance(a, float) and isinstance(b, float):
            if abs(a - b) > tolerance:
                differences[key] = (a, b)
        elif a != b:
            differences[key] = (a, b)
    return differences


def _versions() -> dict:
    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__}
    try:
        from importlib.metadata import version

        versions["segal"] = version("segal")
    except Exception:  # noqa: BLE001 - metadata missing in an uninstalled checkout
        versions["segal"] = None
    return versions


def run_episode(spec: RunSpec, progress: ProgressFn | None = None) -> dict:
    """Run one (policy, seed) episode to the largest budget and return its result record.

    ``progress`` receives small dicts: {"event": "start"|"step"|"done", "run": run_id, "step", "steps",
    "labeled", "next_budget", "test_miou" (at budgets)}; it must be cheap (it is called every step).
    """
    from agents import make_agent
    from experiments.episodes import play_episode

    notify = progress or (lambda event: None)
    _set_threads(spec.torch_threads)
    started, wall0 = _dt.datetime.now(_dt.timezone.utc), time.perf_counter()
    env = _make_env(spec)
    try:
        base = env.unwrapped
        agent = make_agent(spec.policy_source, base, seed=spec.seed, device=spec.device)
        num_pools = base.config.num_pools
        steps = spec.max_budget // num_pools
        budgets = sorted(int(b) for b in spec.budgets)
        notify({"event": "start", "run": spec.run_id, "step": 0, "steps": steps, "labeled": 0, "next_budget": budgets[0]})
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
            "env_resolved": resolved_env(base, start_miou),
            "entries": entries,
            "trace": trace,
            "wall_time_s": time.perf_counter() - wall0,
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "device": str(getattr(base, "device", spec.device)),
            "torch_threads": _torch_threads(),
            "host": socket.gethostname(),
            "versions": _versions(),
        }
        notify({"event": "done", "run": spec.run_id, "step": step, "steps": steps, "labeled": labeled,
                "test_miou": entries[-1]["test_miou"], "wall_time_s": record["wall_time_s"]})
        return record
    finally:
        env.close()


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


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
