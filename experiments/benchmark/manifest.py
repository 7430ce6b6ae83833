"""The output folder of a benchmark: its manifest (benchmark.json), and which stored runs a resumed benchmark may keep.

A folder holds the results of one configuration only; a stored run is reused when it is complete, of the
same configuration and policy file, and made by an env whose effective settings have not changed since.
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from experiments.benchmark.protocol import Config, UsageError
from experiments.benchmark.runner import (
    SCHEMA_VERSION,
    RunSpec,
    comparable_config,
    is_complete,
    resolved_differences,
    result_path,
)

def _manifest_config(config: Config) -> dict:
    return comparable_config({"env_id": config.env_id, "env_kwargs": config.env_kwargs, "budgets": config.budgets,
                              "final_training": config.final_training})


def prepare_out(config: Config) -> dict:
    """Check that ``--out`` holds results of this configuration only, update its manifest
    (benchmark.json), and remove temporary files an interrupted write left behind."""
    from segal_env.storage import atomic_write_json

    out = config.out
    manifest_path = out / "benchmark.json"
    wanted = _manifest_config(config)
    manifest = {}
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        from experiments.benchmark.aggregate import load_results

        if manifest.get("config") != wanted and not load_results(out):
            manifest = {"config": wanted}  # no result of the old configuration to protect (e.g. it failed to prepare)
        if manifest.get("config") != wanted:
            raise UsageError(
                f"{out} holds results of another configuration:\n  stored:    {json.dumps(manifest.get('config'), sort_keys=True)}\n"
                f"  requested: {json.dumps(wanted, sort_keys=True)}\nuse another --out (or delete the folder)"
            )
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    for leftover in runs_dir.glob(".*.tmp.json"):  # torn writes of a killed process (segal_env.storage.atomic_write)
        leftover.unlink(missing_ok=True)
    policies = {**manifest.get("policies", {}), **config.policies}
    order = [p for p in manifest.get("policy_order", []) if p in policies]
    order += [p for p in config.policies if p not in order]
    order += sorted(p for p in policies if p not in order)
    seeds = sorted(set(manifest.get("seeds", [])) | set(config.seeds))
    manifest = {
        "schema_version": SCHEMA_VERSION, "kind": "segal-benchmark", "config": wanted, "env_id": config.env_id,
        "env_kwargs": config.env_kwargs, "budgets": config.budgets, "final_training": config.final_training,
        "policies": policies, "policy_order": order, "seeds": seeds, "notes": config.notes,
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
            if comparable_config(record) != comparable_config(spec.to_dict()):
                raise UsageError(f"{path} is a result of another configuration; use another --out")
            if record.get("policy_source") != spec.policy_source or record.get("policy_sha256") != spec.policy_sha256:
                raise UsageError(
                    f"{path} was produced by {record.get('policy_source')} (sha256 {record.get('policy_sha256')}), "
                    f"now {spec.policy_source} (sha256 {spec.policy_sha256}); relabel the policy (label=path) or use another --out"
                )
            finished.append(spec)
        else:
            pending.append(spec)
    return finished, pending


def check_resolved(finished: list[RunSpec], out: Path, current: dict) -> None:
    """Refuse to add runs to results of an env whose effective settings have changed since (new preset
    defaults, another starting network): the user kwargs alone would not notice."""
    for spec in finished:
        record = json.loads(result_path(out, spec).read_text())
        differences = resolved_differences(record.get("env_resolved"), current)
        if differences:
            listed = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in differences.items())
            raise UsageError(
                f"the environment's effective settings changed since {result_path(out, spec)} was produced ({listed}); "
                "finished and new runs would not be comparable: use another --out, or pin the settings with --env-kwargs"
            )
