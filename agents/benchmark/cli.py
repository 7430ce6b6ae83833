"""Command line of the benchmark (``python evaluate.py ...``): resolve the configuration, skip finished
runs, run the rest on the chosen backend, write one result file per run, then the tables and plots."""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from segal_env.config import check_types, parse_key_values

from agents.benchmark.runner import (
    CONTROLLED_KWARGS,
    SCHEMA_VERSION,
    RunSpec,
    comparable_config,
    file_sha256,
    resolved_differences,
    is_complete,
    result_path,
    sanitize_label,
)

DEFAULT_ENV = "SegAL-Synthetic-v0"
DEFAULT_POLICIES = ["random", "entropy", "bald"]
DEFAULT_SEEDS = 3

# paper budgets (method.md); other data sets: five evenly spaced budgets up to the preset test budget
PAPER_BUDGETS = {
    "camvid": [480, 720, 960, 1200, 1440, 1920],
    "cityscapes": [1920, 3840, 7680, 15360, 30720],
}

# without a GPU, the paper-sized configurations take days: these keep the protocol and shrink the scale
CPU_DEFAULTS = {
    "camvid": {
        "env_kwargs": {"scale": 0.25, "region_size": [18, 20], "num_pools": 12},
        "budgets": [120, 180, 240, 300, 360, 480],
        "why": "no GPU: CamVid at scale 0.25 (90x120 images), 18x20 regions (30 per image; the paper's 90x80 "
               "scaled by 0.25 does not tile), K=12 pools, budgets divided by 4 (120..480 instead of 480..1920)",
    },
    "cityscapes": {
        "env_kwargs": {"scale": 0.25, "region_size": [32, 32], "num_pools": 48},
        "budgets": [240, 480, 960, 1920, 3840],
        "why": "no GPU: Cityscapes at scale 0.25 (256x512 images), 32x32 regions (the paper's 128x128 scaled), "
               "K=48 pools, budgets divided by 8 (240..3840 instead of 1920..30720)",
    },
}

# --quick: a smoke-sized benchmark that finishes in a few minutes on a 2-core CPU
QUICK = {
    # the preset data set and roles (a starting network weak enough that labels still help, strong
    # enough that they do: ~25% test mIoU), fewer train images, pre-training capped at 20 epochs
    # (about a minute, once: cached), 6 candidates per pool, 4 MC-dropout samples for BALD
    "synthetic": {
        "env_kwargs": {"dataset_kwargs": {"n_train": 120}, "num_pools": 8, "pool_size": 6, "pretrain_steps": 200,
                       "mc_samples": 4},
        "budgets": [16, 32, 48, 64],
        "seeds": 2,
    },
    "camvid": {
        "env_kwargs": {"scale": 0.25, "region_size": [18, 20], "num_pools": 12, "pool_size": 5,
                       "role_sizes": {"d_s": 4, "d_t": 50, "d_r": 30}, "pretrain_steps": 200, "mc_samples": 4},
        "budgets": [24, 48, 72],
        "seeds": 2,
    },
    "cityscapes": {
        "env_kwargs": {"scale": 0.125, "region_size": [32, 32], "num_pools": 16, "pool_size": 5,
                       "role_sizes": {"d_s": 4, "d_t": 30, "d_r": 30, "d_v": 60}, "pretrain_steps": 80, "mc_samples": 4},
        "budgets": [32, 64, 96],
        "seeds": 2,
    },
    "*": {"env_kwargs": {"pretrain_steps": 80, "mc_samples": 4}, "budget_steps": [2, 4, 6], "seeds": 2},
}


class UsageError(Exception):
    """A configuration the user must change; printed without a traceback, exit code 2."""


# ---- argument parsing ------------------------------------------------------------------------------
def parse_env_kwargs(items: list[str]) -> dict:
    """--env-kwargs KEY=VALUE items, parsed and type-checked like train.py's (segal_env.config)."""
    from segal_env.env import SegALEnv  # torch loads only once a run needs it

    try:
        kwargs = parse_key_values(items, "--env-kwargs")
        check_types(SegALEnv.__init__, kwargs, "env keyword")
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from None
    return kwargs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate.py",
        description="Benchmark labelling policies (baselines and trained agents) in a SegAL environment's test mode: "
                    "every (policy, seed) runs to the largest budget from identical starting conditions per seed; "
                    "the test-split mIoU, per-class IoU and labeled pixels per class are recorded at every budget.",
    )
    parser.add_argument("--env", default=DEFAULT_ENV, help=f"registered env id; SegAL-Synthetic-v0, SegAL-CamVid-v0, SegAL-Cityscapes-v0, SegAL-Folder-v0 (default {DEFAULT_ENV})")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE",
                        help='env kwargs, values as JSON: data_root=/data/camvid scale=0.5 region_size=[45,40] '
                             'dataset_kwargs={"n_train":80}')
    parser.add_argument("--policies", nargs="+", default=None, metavar="POLICY",
                        help=f"baseline names or saved models (path, or label=path); default {' '.join(DEFAULT_POLICIES)}")
    parser.add_argument("--seeds", type=int, default=None, help=f"number of seeds (default {DEFAULT_SEEDS}; --quick: 2)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed + seeds - 1 (default 0)")
    parser.add_argument("--budgets", nargs="+", type=int, default=None, metavar="REGIONS",
                        help="labeled-region counts to score at (multiples of num_pools); default: the paper's for "
                             "CamVid/Cityscapes, else 5 budgets up to the preset test budget")
    parser.add_argument("--out", default=None, help="output folder (default results/<env>[-quick])")
    parser.add_argument("--final-training", action="store_true",
                        help="score the test split after training a copy of the network to convergence on the "
                             "acquired regions (early stopping on D_R; the paper's protocol; slower)")
    parser.add_argument("--quick", action="store_true", help="a small configuration that finishes in minutes on a 2-core CPU")
    parser.add_argument("--device", default="auto", help="torch device of every run: auto (default), cpu, cuda, cuda:1")
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes on this machine, GPUs assigned round-robin (default 1: serial)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per run (default 1; Ray: --ray-cpus). Use --workers for parallelism; CPU numbers "
                             "are identical across backends for the same value")
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="run as Ray tasks on the cluster at ADDRESS, or on a new local instance when no address "
                             'is given (needs: pip install -e ".[ray]")')
    parser.add_argument("--ray-cpus", type=float, default=1.0, help="CPUs per Ray task (default 1)")
    parser.add_argument("--ray-gpus", type=float, default=0.0, help="GPUs per Ray task, a fraction shares a GPU (default 0)")
    parser.add_argument("--ray-num-cpus", type=int, default=None, help="CPUs of a local Ray instance (default: all)")
    parser.add_argument("--target-miou", type=float, default=None,
                        help="headline target test mIoU as a fraction (default: the best baseline's final mIoU)")
    parser.add_argument("--reference", default=None, help="policy the savings are relative to (default: the best baseline)")
    parser.add_argument("--class-budget", type=int, default=None, help="budget of the per-class plots (default: the largest)")
    parser.add_argument("--aggregate-only", action="store_true", help="only rebuild tables and plots from the result files")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--no-progress", action="store_true", help="no progress display (errors and the summary still print)")
    return parser


# ---- configuration -----------------------------------------------------------------------------------
@dataclass
class Config:
    env_id: str
    env_kwargs: dict
    policies: dict[str, str]  # label -> source (baseline name or model path)
    seeds: list[int]
    budgets: list[int]
    final_training: bool
    device: str
    threads: int
    out: Path
    notes: list[str] = field(default_factory=list)


def dataset_of(env_id: str, env_kwargs: dict) -> str | None:
    import gymnasium as gym

    import segal_env  # noqa: F401 - registers the SegAL ids

    try:
        spec = gym.spec(env_id)
    except gym.error.Error as error:
        known = sorted(i for i in gym.registry if i.startswith("SegAL"))
        raise UsageError(f"unknown env id {env_id!r} ({error}); SegAL ids: {known}") from None
    return env_kwargs.get("dataset", spec.kwargs.get("dataset"))


def _num_pools(dataset: str | None, env_kwargs: dict) -> int | None:
    if env_kwargs.get("num_pools"):
        return int(env_kwargs["num_pools"])
    from segal_env.presets import PRESETS, preset_value

    return int(preset_value(dataset, "num_pools", "test")) if dataset in PRESETS else None


def default_budgets(dataset: str | None, env_kwargs: dict) -> list[int]:
    k = _num_pools(dataset, env_kwargs)
    if dataset in PAPER_BUDGETS:
        budgets = PAPER_BUDGETS[dataset]
    else:
        from segal_env.presets import PRESETS, preset_value

        if dataset not in PRESETS or k is None:
            raise UsageError(f"no default budgets for env dataset {dataset!r}: pass --budgets")
        top = int(env_kwargs.get("budget") or preset_value(dataset, "budget", "test"))
        budgets = [top * i / 5 for i in range(1, 6)]
    if k:  # keep every default budget a multiple of the pool count
        budgets = sorted({max(k, int(round(b / k)) * k) for b in budgets})
    return [int(b) for b in budgets]


def parse_policies(items: list[str]) -> dict[str, str]:
    """label -> source. A baseline name is its own label; a model path is labelled by its file stem
    (or explicitly, ``label=path``). Unknown names and missing files are a UsageError."""
    from agents.baselines import BASELINES

    policies: dict[str, str] = {}
    for item in items:
        label, sep, source = item.partition("=")
        if not sep:
            label, source = "", item
        if source in BASELINES:
            label = label or source
        else:
            path = Path(source).expanduser()
            if not path.is_file() and Path(f"{path}.zip").is_file():
                path = Path(f"{path}.zip")
            if not path.is_file():
                raise UsageError(
                    f"unknown policy {item!r}: not a baseline name ({', '.join(BASELINES)}) "
                    "and not the path of a saved model (.zip)"
                )
            source = str(path.resolve())
            label = label or path.stem
        label = sanitize_label(label)
        if label in policies and policies[label] != source:
            raise UsageError(f"two policies are labelled {label!r} ({policies[label]} and {source}); name them with label=path")
        policies[label] = source
    return policies


def resolve_config(args: argparse.Namespace) -> Config:
    notes: list[str] = []
    user_kwargs = parse_env_kwargs(args.env_kwargs)
    controlled = sorted(set(user_kwargs) & set(CONTROLLED_KWARGS) - {"budget"})
    if controlled:
        raise UsageError(f"env kwargs {controlled} are set by the benchmark (test mode, --budgets, --final-training); drop them")
    dataset = dataset_of(args.env, user_kwargs)
    env_kwargs: dict = {}
    budgets = args.budgets
    seeds = args.seeds
    policies = args.policies or list(DEFAULT_POLICIES)

    import torch

    gpu = torch.cuda.is_available() or (args.ray is not None and args.ray_gpus > 0)
    on_cpu = args.device == "cpu" or (not args.device.startswith("cuda") and not gpu)
    if args.quick:
        quick = QUICK.get(dataset, QUICK["*"])
        env_kwargs.update(quick["env_kwargs"])
        seeds = seeds or quick["seeds"]
        if budgets is None:
            if "budgets" in quick:
                budgets = list(quick["budgets"])
            else:
                k = _num_pools(dataset, {**env_kwargs, **user_kwargs}) or 1
                budgets = [k * s for s in quick["budget_steps"]]
        notes.append(f"--quick: small configuration for a smoke benchmark ({json.dumps(quick['env_kwargs'], sort_keys=True)}); "
                     "numbers are not comparable with full runs")
    elif on_cpu and dataset in CPU_DEFAULTS and "scale" not in user_kwargs:
        cpu = CPU_DEFAULTS[dataset]
        env_kwargs.update(cpu["env_kwargs"])
        if budgets is None and "num_pools" not in user_kwargs:
            budgets = list(cpu["budgets"])
        notes.append(cpu["why"] + "; pass scale=... (and region_size/num_pools, --budgets) to override")
    env_kwargs.update(user_kwargs)
    if budgets is None:
        budgets = default_budgets(dataset, env_kwargs)
    env_kwargs.pop("budget", None)  # the benchmark sets the env budget to the largest of --budgets
    budgets = sorted({int(b) for b in budgets})
    if not budgets or budgets[0] <= 0:
        raise UsageError(f"budgets must be positive, got {budgets}")
    k = _num_pools(dataset, env_kwargs)
    if k and any(b % k for b in budgets):
        raise UsageError(f"budgets {[b for b in budgets if b % k]} are not multiples of num_pools={k} (one region per pool per step)")
    seeds_count = DEFAULT_SEEDS if seeds is None else int(seeds)
    if seeds_count < 1:
        raise UsageError("--seeds must be >= 1")
    if args.workers < 1:
        raise UsageError("--workers must be >= 1")
    # one torch thread per run unless asked: the runs are small (intra-op threads gain little and
    # oversubscribe a busy machine badly), parallelism comes from --workers / Ray, and one fixed value
    # keeps CPU numbers identical across backends
    if args.ray is not None:
        threads = args.threads or max(1, int(math.floor(args.ray_cpus)))
    else:
        threads = args.threads or 1
    out = Path(args.out) if args.out else Path("results") / (sanitize_label(args.env.lower()) + ("-quick" if args.quick else ""))
    return Config(
        env_id=args.env, env_kwargs=env_kwargs, policies=parse_policies(policies),
        seeds=list(range(args.first_seed, args.first_seed + seeds_count)), budgets=budgets,
        final_training=bool(args.final_training), device=args.device, threads=int(threads), out=out, notes=notes,
    )


def make_specs(config: Config) -> list[RunSpec]:
    """Seed-major order: the first seed of every policy finishes first (early comparable results)."""
    from agents.baselines import BASELINES

    hashes = {label: None if source in BASELINES else file_sha256(source) for label, source in config.policies.items()}
    return [
        RunSpec(env_id=config.env_id, env_kwargs=config.env_kwargs, policy=label, policy_source=source, seed=seed,
                budgets=config.budgets, final_training=config.final_training, device=config.device,
                torch_threads=config.threads, policy_sha256=hashes[label])
        for seed in config.seeds for label, source in config.policies.items()
    ]


# ---- output folder -----------------------------------------------------------------------------------
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
        from agents.benchmark.aggregate import load_results

        if manifest.get("config") != wanted and not load_results(out):
            manifest = {"config": wanted}  # no result of the old configuration to protect (e.g. it failed to prepare)
        if manifest.get("config") != wanted:
            raise UsageError(
                f"{out} holds results of another configuration:\n  stored:    {json.dumps(manifest.get('config'), sort_keys=True)}\n"
                f"  requested: {json.dumps(wanted, sort_keys=True)}\nuse another --out (or delete the folder)"
            )
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    for leftover in runs_dir.glob(".*.json.*.tmp"):  # torn writes of a killed process (atomic_write_json temp files)
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


# ---- main ------------------------------------------------------------------------------------------
def aggregate(out: Path, args: argparse.Namespace, console: Console, notes: list[str] | None = None,
              policy_order: list[str] | None = None, plots: bool = True) -> dict | None:
    from segal_env.storage import atomic_write_json, atomic_write_text

    from agents.benchmark.aggregate import csv_tables, load_results, report_markdown, summarize

    records = load_results(out)
    if not records:
        console.print(f"no complete results in {out}/runs yet: nothing to aggregate")
        return None
    summary = summarize(records, target_miou=args.target_miou, reference=args.reference,
                        class_budget=args.class_budget, policy_order=policy_order)
    for name, text in csv_tables(summary).items():
        atomic_write_text(text, out / name)
    from agents.benchmark.aggregate import miou_markdown

    atomic_write_text(miou_markdown(summary) + "\n", out / "results.md")
    made = {}
    if plots:
        from agents.benchmark.plots import make_plots

        made = make_plots(summary, out)
    summary["plots"] = made
    atomic_write_json(summary, out / "summary.json")
    report = report_markdown(summary, made, notes)
    atomic_write_text(report, out / "summary.md")
    print(report, flush=True)  # plain print: rich would re-wrap the markdown tables
    console.print(f"outputs in {out}/: runs/*.json, results.md, results.csv, per_class_iou.csv, labeled_pixels.csv, "
                  f"headline.csv, summary.md, summary.json" + (", " + ", ".join(made.values()) if made else ""),
                  markup=False, highlight=False)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(stderr=False, highlight=False, soft_wrap=True)
    try:
        return _main(args, console)
    except UsageError as error:
        parser.print_usage(sys.stderr)
        print(f"evaluate.py: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are saved; run the same command again to resume", file=sys.stderr)
        return 130


def _main(args: argparse.Namespace, console: Console) -> int:
    from segal_env.storage import atomic_write_json, atomic_write_text

    from agents.benchmark.backends import make_backend
    from agents.benchmark.progress import BenchmarkProgress

    config = resolve_config(args)
    if args.aggregate_only:
        manifest_path = config.out / "benchmark.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        summary = aggregate(config.out, args, console, manifest.get("notes"), manifest.get("policy_order", list(manifest.get("policies", {}))),
                            plots=not args.no_plots)
        return 0 if summary else 1
    for note in config.notes:
        console.print(f"[note] {note}", markup=False)
    manifest = prepare_out(config)
    specs = make_specs(config)
    finished, pending = split_finished(specs, config.out)
    backend_name = "ray" if args.ray is not None else ("processes" if args.workers > 1 else "serial")
    console.print(
        f"[benchmark] {config.env_id}, policies {list(config.policies)}, seeds {config.seeds}, budgets {config.budgets}, "
        f"{'final training, ' if config.final_training else ''}out {config.out}: {len(specs)} runs, "
        f"{len(finished)} already finished, {len(pending)} to run on backend '{backend_name}' "
        f"({config.threads} torch thread(s) per run)", markup=False,
    )
    failures: dict[str, str] = {}
    if pending:
        try:
            backend = make_backend(
                workers=args.workers, ray_address=False if args.ray is None else args.ray,
                ray_cpus=args.ray_cpus, ray_gpus=args.ray_gpus, device=config.device, local_ray_cpus=args.ray_num_cpus,
            )
        except RuntimeError as error:  # Ray missing or unreachable
            raise UsageError(str(error)) from None
        with backend:
            console.print("[benchmark] preparing the environment (pre-trains the starting network once if it is not cached)...",
                          markup=False)
            try:
                description = backend.describe(pending[0], [(label, source) for label, source in config.policies.items()
                                                            if label in {s.policy for s in pending}])
            except Exception as error:  # noqa: BLE001 - a configuration problem: say so without a traceback
                import traceback

                atomic_write_text(traceback.format_exc(), config.out / "errors" / "prepare.txt")
                raise UsageError(f"could not prepare {config.env_id} with {json.dumps(config.env_kwargs, sort_keys=True)}: "
                                 f"{str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__} "
                                 f"(traceback in {config.out}/errors/prepare.txt)") from None
            (config.out / "errors" / "prepare.txt").unlink(missing_ok=True)
            check_resolved(finished, config.out, description["resolved"])
            steps = max(config.budgets) // description["num_pools"]
            console.print(f"[benchmark] {len(description['class_names'])} classes, K={description['num_pools']} pools of "
                          f"N={description['pool_size']}, {steps} steps per run, start D_R mIoU "
                          f"{100 * description['start_reward_set_miou']:.2f}, device {description['device']}", markup=False)

            with BenchmarkProgress(pending, steps, console=Console(stderr=True, soft_wrap=True), enabled=not args.no_progress) as progress:
                def on_result(spec: RunSpec, record: dict) -> None:
                    atomic_write_json(record, result_path(config.out, spec))
                    (config.out / "errors" / f"{spec.run_id}.txt").unlink(missing_ok=True)  # an earlier failure, now fixed
                    progress.finished(spec, record)

                def on_error(spec: RunSpec, error: str) -> None:
                    failures[spec.run_id] = error
                    atomic_write_text(error, config.out / "errors" / f"{spec.run_id}.txt")
                    progress.failed(spec, error)

                backend.run(pending, progress.event, on_result, on_error)
    summary = aggregate(config.out, args, console, manifest.get("notes"), manifest.get("policy_order", list(manifest.get("policies", {}))),
                        plots=not args.no_plots)
    if failures:
        console.print(f"[benchmark] {len(failures)} run(s) failed: {sorted(failures)}; tracebacks in {config.out}/errors/. "
                      "Re-running the same command retries only those.", markup=False)
        return 1
    return 0 if summary is not None else 1
