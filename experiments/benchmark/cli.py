"""Command line of the benchmark (``python evaluate.py ...``): resolve the configuration, skip finished
runs, run the rest on the chosen backend, write one result file per run, then the tables and plots."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from rich.console import Console

from experiments.benchmark.aggregate import load_results, summarize
from experiments.benchmark.backends import make_backend
from experiments.benchmark.manifest import check_resolved, prepare_out, split_finished
from experiments.benchmark.plots import make_plots
from experiments.benchmark.progress import BenchmarkProgress
from experiments.benchmark.protocol import (
    DEFAULT_POLICIES,
    DEFAULT_SEEDS,
    Config,
    UsageError,
    make_specs,
    resolve_config,
)
from experiments.benchmark.reports import csv_tables, miou_markdown, report_markdown
from experiments.benchmark.runner import RunSpec, result_path
from experiments.folder_lock import FolderBusy, FolderLock
from segal_env import DEFAULT_ENV_ID, ENV_IDS
from segal_env.runtime import thread_count
from segal_env.storage import atomic_write_json, atomic_write_text


# ---- argument parsing ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Benchmark labelling policies (baselines and trained agents) in a SegAL environment's test mode: "
        "every (policy, seed) runs to the largest budget from identical starting conditions per seed; "
        "the test-split mIoU, per-class IoU and labeled pixels per class are recorded at every budget.",
    )
    parser.add_argument(
        "--env", default=DEFAULT_ENV_ID, help=f"registered env id; {', '.join(ENV_IDS)} (default {DEFAULT_ENV_ID})"
    )
    parser.add_argument(
        "--env-kwargs",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="env kwargs, values as JSON: data_root=/data/camvid scale=0.5 region_size=[45,40] "
        'dataset_kwargs={"n_train":80}',
    )
    parser.add_argument(
        "--policies",
        nargs="+",
        default=None,
        metavar="POLICY",
        help=f"baseline names or saved models (path, or label=path); default {' '.join(DEFAULT_POLICIES)}",
    )
    parser.add_argument(
        "--seeds", type=int, default=None, help=f"number of seeds (default {DEFAULT_SEEDS}; --quick: 2)"
    )
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed + seeds - 1 (default 0)"
    )
    parser.add_argument(
        "--budgets",
        nargs="+",
        type=int,
        default=None,
        metavar="REGIONS",
        help="labeled-region counts to score at (multiples of num_pools); default: the paper's for "
        "CamVid/Cityscapes, else 5 budgets up to the preset test budget",
    )
    parser.add_argument("--out", default=None, help="output folder (default results/<env>[-quick])")
    parser.add_argument(
        "--final-training",
        action="store_true",
        help="score the test split after training a copy of the network on the acquired regions "
        "for final_steps steps (fixed length by design, no early stopping; slower)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a small configuration that finishes in minutes on a 2-core CPU"
    )
    parser.add_argument("--device", default="auto", help="torch device of every run: auto (default), cpu, cuda, cuda:1")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="parallel worker processes on this machine, GPUs assigned round-robin (default 1: serial)",
    )
    parser.add_argument(
        "--threads",
        type=thread_count,
        default=None,
        help="torch threads per run (default 1; Ray: --ray-cpus). Use --workers for parallelism; CPU numbers "
        "are identical across backends for the same value",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run as Ray tasks on the cluster at ADDRESS, or on a new local instance when no address "
        'is given (needs: pip install -e ".[ray]")',
    )
    parser.add_argument("--ray-cpus", type=float, default=1.0, help="CPUs per Ray task (default 1)")
    parser.add_argument(
        "--ray-gpus", type=float, default=0.0, help="GPUs per Ray task, a fraction shares a GPU (default 0)"
    )
    parser.add_argument("--ray-num-cpus", type=int, default=None, help="CPUs of a local Ray instance (default: all)")
    parser.add_argument(
        "--target-miou",
        type=float,
        default=None,
        help="headline target test mIoU as a fraction (default: the best baseline's final mIoU)",
    )
    parser.add_argument(
        "--reference", default=None, help="policy the savings are relative to (default: the best baseline)"
    )
    parser.add_argument(
        "--class-budget", type=int, default=None, help="budget of the per-class plots (default: the largest)"
    )
    parser.add_argument(
        "--aggregate-only", action="store_true", help="only rebuild tables and plots from the result files"
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress display (errors and the summary still print)"
    )
    return parser


# ---- main ------------------------------------------------------------------------------------------
def aggregate(
    out: Path,
    args: argparse.Namespace,
    console: Console,
    notes: list[str] | None = None,
    policy_order: list[str] | None = None,
    plots: bool = True,
) -> dict | None:
    records = load_results(out)
    if not records:
        console.print(f"no complete results in {out}/runs yet: nothing to aggregate")
        return None
    summary = summarize(
        records,
        target_miou=args.target_miou,
        reference=args.reference,
        class_budget=args.class_budget,
        policy_order=policy_order,
    )
    for name, text in csv_tables(summary).items():
        atomic_write_text(text, out / name)
    atomic_write_text(miou_markdown(summary) + "\n", out / "results.md")
    made = {}
    if plots:
        made = make_plots(summary, out)
    summary["plots"] = made
    atomic_write_json(summary, out / "summary.json")
    report = report_markdown(summary, made, notes)
    atomic_write_text(report, out / "summary.md")
    print(report, flush=True)  # plain print: rich would re-wrap the markdown tables
    console.print(
        f"outputs in {out}/: runs/*.json, results.md, results.csv, per_class_iou.csv, labeled_pixels.csv, "
        f"headline.csv, summary.md, summary.json" + (", " + ", ".join(made.values()) if made else ""),
        markup=False,
        highlight=False,
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(stderr=False, highlight=False, soft_wrap=True)
    try:
        return _main(args, console)
    except UsageError as error:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are saved; run the same command again to resume", file=sys.stderr)
        return 130


def _main(args: argparse.Namespace, console: Console) -> int:
    config = resolve_config(args)
    if args.aggregate_only and not config.out.is_dir():
        console.print(f"no complete results in {config.out}/runs yet: nothing to aggregate")
        return 1
    lock = FolderLock(config.out, "evaluate.py")
    try:
        lock.acquire()
    except FolderBusy as error:
        raise UsageError(str(error)) from None
    try:
        note = lock.stale_note()
        if note:
            console.print(f"[note] {note}", markup=False)
        return _run(args, config, console)
    finally:
        lock.release()


def check_reference(reference: str | None, policies: list[str], out: Path) -> None:
    """``--reference`` must name a policy of this command or one with results in ``out``: say so before any run."""
    if reference is None or reference in policies:
        return
    stored = sorted({record["policy"] for record in load_results(out)})
    if reference not in stored:
        where = f"neither in --policies ({', '.join(policies)}) nor" if policies else "not"
        raise UsageError(
            f"--reference {reference!r} is {where} among the results in {out}/runs ({', '.join(stored) or 'none'}): "
            f"{'add it to --policies or ' if policies else ''}drop --reference"
        )


def _run(args: argparse.Namespace, config: Config, console: Console) -> int:
    """The benchmark proper, with the output folder locked (``experiments.folder_lock``)."""
    check_reference(args.reference, [] if args.aggregate_only else list(config.policies), config.out)
    if args.aggregate_only:
        manifest_path = config.out / "benchmark.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        summary = aggregate(
            config.out,
            args,
            console,
            manifest.get("notes"),
            manifest.get("policy_order", list(manifest.get("policies", {}))),
            plots=not args.no_plots,
        )
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
        f"({config.threads} torch thread(s) per run)",
        markup=False,
    )
    failures: dict[str, str] = {}
    if pending:
        try:
            backend = make_backend(
                workers=args.workers,
                ray_address=False if args.ray is None else args.ray,
                ray_cpus=args.ray_cpus,
                ray_gpus=args.ray_gpus,
                device=config.device,
                local_ray_cpus=args.ray_num_cpus,
            )
        except RuntimeError as error:  # Ray missing or unreachable
            raise UsageError(str(error)) from None
        with backend:
            console.print(
                "[benchmark] preparing the environment (pre-trains the starting network once if it is not cached)...",
                markup=False,
            )
            try:
                description = backend.describe(
                    pending[0],
                    [
                        (label, source)
                        for label, source in config.policies.items()
                        if label in {s.policy for s in pending}
                    ],
                )
            except Exception as error:  # noqa: BLE001 - a configuration problem: say so without a traceback
                atomic_write_text(traceback.format_exc(), config.out / "errors" / "prepare.txt")
                raise UsageError(
                    f"could not prepare {config.env_id} with {json.dumps(config.env_kwargs, sort_keys=True)}: "
                    f"{str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__} "
                    f"(traceback in {config.out}/errors/prepare.txt)"
                ) from None
            (config.out / "errors" / "prepare.txt").unlink(missing_ok=True)
            check_resolved(finished, config.out, description)
            steps = config.env_config.steps_per_episode
            console.print(
                f"[benchmark] {len(description['class_names'])} classes, K={description['num_pools']} pools of "
                f"N={description['pool_size']}, {steps} steps per run, start D_R mIoU "
                f"{100 * description['start_reward_set_miou']:.2f}, device {description['device']}",
                markup=False,
            )

            with BenchmarkProgress(
                pending, steps, console=Console(stderr=True, soft_wrap=True), enabled=not args.no_progress
            ) as progress:

                def on_result(spec: RunSpec, record: dict) -> None:
                    atomic_write_json(record, result_path(config.out, spec))
                    (config.out / "errors" / f"{spec.run_id}.txt").unlink(
                        missing_ok=True
                    )  # an earlier failure, now fixed
                    progress.finished(spec, record)

                def on_error(spec: RunSpec, error: str) -> None:
                    failures[spec.run_id] = error
                    atomic_write_text(error, config.out / "errors" / f"{spec.run_id}.txt")
                    progress.failed(spec, error)

                backend.run(pending, progress.event, on_result, on_error)
    summary = aggregate(
        config.out,
        args,
        console,
        manifest.get("notes"),
        manifest.get("policy_order", list(manifest.get("policies", {}))),
        plots=not args.no_plots,
    )
    if failures:
        console.print(
            f"[benchmark] {len(failures)} run(s) failed: {sorted(failures)}; tracebacks in {config.out}/errors/. "
            "Re-running the same command retries only those.",
            markup=False,
        )
        return 1
    return 0 if summary is not None else 1


if __name__ == "__main__":
    sys.exit(main())
