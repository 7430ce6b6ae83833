"""The output folder of a benchmark: its manifest (benchmark.json), and which stored runs a resumed benchmark may keep.

A folder holds the results of one configuration only; a stored run is reused when it is complete, of the
same configuration and policy file, and made by an env whose effective settings have not changed since.

Two fingerprints guard a resume, both naming the settings that differ when they refuse:

- the manifest's, written before anything runs: the user's env kwargs, budgets and --final-training
  (``config``) and every effective env setting the driver resolved (``env_settings``: ``EnvConfig.to_dict()``
  without the settings that cannot change results, ``runner.NON_RESULT_KWARGS``);
- each record's, written by the run: the settings of the env it ran on and its starting D_R mIoU (a
  fingerprint of the cached starting network), compared with a freshly built env before new runs start.

A folder written before segal recorded every setting (records without ``env_settings``) is refused: its
runs cannot be shown to match; start a new ``--out``, delete the folder, or rebuild its tables with
``--aggregate-only``.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from experiments.benchmark.aggregate import load_results
from experiments.benchmark.protocol import Config, UsageError
from experiments.benchmark.runner import (
    SCHEMA_VERSION,
    RunSpec,
    comparable_config,
    describe_differences,
    env_settings,
    is_complete,
    result_path,
    settings_differences,
)
from segal_env.storage import atomic_write_json

START_MIOU_TOLERANCE = 1e-3  # the starting D_R mIoU may move in the last digits between devices


def old_folder_message(out: Path, what: str) -> str:
    return (
        f"{what} was written by an older segal that did not record every env setting, so a resume cannot "
        f"check that new runs would match it: use another --out, delete {out}, or rebuild its tables "
        "with --aggregate-only"
    )


def _manifest_config(config: Config) -> dict:
    return comparable_config(
        {
            "env_id": config.env_id,
            "env_kwargs": config.env_kwargs,
            "budgets": config.budgets,
            "final_training": config.final_training,
        }
    )


def prepare_out(config: Config) -> dict:
    """Check that ``--out`` holds results of this configuration only, update its manifest
    (benchmark.json), and remove temporary files an interrupted write left behind."""
    out = config.out
    manifest_path = out / "benchmark.json"
    wanted = _manifest_config(config)
    settings = env_settings(config.env_config)
    manifest = {}
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if not load_results(out):
            manifest = {}  # no result to protect (e.g. the last configuration failed to prepare)
        elif manifest.get("config") != wanted:
            differences = settings_differences(manifest.get("config") or {}, wanted)
            raise UsageError(
                f"{out} holds results of another configuration ({describe_differences(differences)}):\n"
                f"  stored:    {json.dumps(manifest.get('config'), sort_keys=True)}\n"
                f"  requested: {json.dumps(wanted, sort_keys=True)}\nuse another --out (or delete the folder)"
            )
        elif "env_settings" not in manifest:
            raise UsageError(old_folder_message(out, f"{manifest_path}"))
        else:
            differences = settings_differences(manifest["env_settings"], settings)
            if differences:
                raise UsageError(
                    f"the environment's effective settings differ from those of the results in {out} "
                    f"({describe_differences(differences)}); finished and new runs would not be comparable: "
                    "use another --out, or pin the settings with --env-kwargs"
                )
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    # torn writes of a killed process (segal_env.storage.atomic_write): safe to remove, since the caller holds
    # the folder's lock (experiments.folder_lock), so no live writer is behind any of them
    for leftover in runs_dir.glob(".*.tmp.json"):
        leftover.unlink(missing_ok=True)
    policies = {**manifest.get("policies", {}), **config.policies}
    order = [p for p in manifest.get("policy_order", []) if p in policies]
    order += [p for p in config.policies if p not in order]
    order += sorted(p for p in policies if p not in order)
    seeds = sorted(set(manifest.get("seeds", [])) | set(config.seeds))
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "kind": "segal-benchmark",
        "config": wanted,
        "env_settings": settings,
        "env_id": config.env_id,
        "env_kwargs": config.env_kwargs,
        "budgets": config.budgets,
        "final_training": config.final_training,
        "policies": policies,
        "policy_order": order,
        "seeds": seeds,
        "notes": config.notes,
        "updated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_json(manifest, manifest_path)
    return manifest


def split_finished(specs: list[RunSpec], out: Path) -> tuple[list[RunSpec], list[RunSpec]]:
    """(finished, pending). A stored result counts as finished only when it is complete and of the same
    configuration and policy; a stored result of a different model file is an error."""
    finished, pending = [], []
    for spec in specs:
        path = result_path(out, spec)
        record = None
        if path.is_file():
            try:
                record = json.loads(path.read_text())
            except json.JSONDecodeError:
                record = None
        if record is not None and is_complete(record):
            differences = settings_differences(comparable_config(record), comparable_config(spec.to_dict()))
            if differences:
                raise UsageError(
                    f"{path} is a result of another configuration ({describe_differences(differences)}); "
                    "use another --out"
                )
            if record.get("policy_source") != spec.policy_source or record.get("policy_sha256") != spec.policy_sha256:
                raise UsageError(
                    f"{path} was produced by {record.get('policy_source')} (sha256 {record.get('policy_sha256')}), "
                    f"now {spec.policy_source} (sha256 {spec.policy_sha256}); relabel the policy (label=path) or use another --out"
                )
            finished.append(spec)
        else:
            pending.append(spec)
    return finished, pending


def check_resolved(finished: list[RunSpec], out: Path, description: dict) -> None:
    """Refuse to add runs to results of an env whose effective settings have changed since (new preset
    defaults, another starting network): ``description`` is the freshly built env's (backends' describe)."""
    for spec in finished:
        path = result_path(out, spec)
        record = json.loads(path.read_text())
        if "env_settings" not in record:
            raise UsageError(old_folder_message(out, str(path)))
        differences = settings_differences(record["env_settings"], description["env_settings"])
        stored_miou, current_miou = record["start"]["reward_set_miou"], description["start_reward_set_miou"]
        if abs(float(stored_miou) - float(current_miou)) > START_MIOU_TOLERANCE:
            differences["start_reward_set_miou"] = (stored_miou, current_miou)
        if differences:
            raise UsageError(
                f"the environment's effective settings changed since {path} was produced "
                f"({describe_differences(differences)}); finished and new runs would not be comparable: "
                "use another --out, or pin the settings with --env-kwargs"
            )
