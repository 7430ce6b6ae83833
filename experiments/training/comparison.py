"""After training: the trained agent (greedy) against the baselines on the same held-out test episodes."""

from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import gymnasium as gym
import torch

from agents import SinglePoolWrapper, make_agent
from experiments.benchmark.statistics import mean_std, paired_difference, se_text
from experiments.episodes import play_episode
from experiments.training.config import RunConfig
from experiments.training.envs import env_summary

# margin is the best single rule on both presets; margin_balance is the rule BatchDQN starts from (train.py's prior),
# so its row says what training added to it
BASELINES_TO_COMPARE = ("random", "entropy", "margin", "margin_balance")


def check_baselines(env: gym.Env) -> None:
    """Build every comparison baseline against ``env``'s observation, so that an env without a feature one of them
    reads is a usage error before training rather than a crash after it."""
    for name in BASELINES_TO_COMPARE:
        try:
            make_agent(name, env)
        except KeyError as error:
            raise ValueError(
                f"the comparison after training plays {', '.join(BASELINES_TO_COMPARE)}, and {name} cannot read "
                f"this env: {error.args[0]}; or pass --no-compare"
            ) from None


@dataclass(frozen=True)
class ComparisonJob:
    """One comparison episode: the row it belongs to, the policy that plays it (a baseline name or a model path)
    and the episode seed. Each job builds its own agent, so a row's numbers do not depend on which process
    played which of its episodes, nor in what order."""

    row: str
    policy: str
    seed: int


@dataclass(frozen=True)
class ComparisonSetup:
    """What every comparison episode shares; picklable, so a worker process builds the same env from it."""

    env_id: str
    env_kwargs: dict[str, Any]
    algo: str
    agent_seed: int
    device: str


def play_job(job: ComparisonJob, setup: ComparisonSetup, base_env: gym.Env) -> dict[str, float]:
    """One greedy episode of ``job``: final D_R mIoU, test mIoU, return and wall seconds. Plain DQN plays
    through ``SinglePoolWrapper``; the baselines act on the env itself."""
    started = time.perf_counter()
    is_model = job.policy not in BASELINES_TO_COMPARE
    env = SinglePoolWrapper(base_env) if is_model and setup.algo == "DQN" else base_env
    agent = make_agent(job.policy, env, seed=setup.agent_seed, device=setup.device)
    episode = play_episode(agent, env, job.seed)
    return {
        "final_miou": float(episode.final_info["miou"]),
        "test_miou": float(episode.final_info.get("test_miou", float("nan"))),
        "return": episode.total_reward,
        "seconds": time.perf_counter() - started,
    }


_WORKER_ENV: dict[str, gym.Env] = {}


def _worker_init(setup: ComparisonSetup, threads: int) -> None:
    import segal_env  # noqa: F401  (registers the ids in a fresh worker process)

    torch.set_num_threads(threads)
    _WORKER_ENV["env"] = gym.make(setup.env_id, **setup.env_kwargs)


def _worker_play(job: ComparisonJob, setup: ComparisonSetup) -> dict[str, float]:
    return play_job(job, setup, _WORKER_ENV["env"])


def play_jobs(
    jobs: list[ComparisonJob], setup: ComparisonSetup, env: gym.Env, workers: int, threads: int
) -> Iterator[tuple[ComparisonJob, dict[str, float]]]:
    """Play every job, yielding each as it finishes: on ``env`` in this process (torch's threads as they are)
    for one worker, else in ``workers`` spawned processes of ``threads`` torch threads, each with its own env."""
    if workers == 1:
        for job in jobs:
            yield job, play_job(job, setup, env)
        return
    context = mp.get_context("spawn")  # fork after torch has started threads is unsafe
    with ProcessPoolExecutor(workers, context, initializer=_worker_init, initargs=(setup, threads)) as pool:
        futures = {pool.submit(_worker_play, job, setup): job for job in jobs}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:  # an episode that failed (or a Ctrl-C) drops the episodes not started yet
            pool.shutdown(cancel_futures=True)


def summarize(values: list[float]) -> dict[str, Any]:
    """Mean, sample std (ddof=1, the benchmark's ``mean_std``; 0 for one episode) and the values of one column."""
    mean, std = mean_std(values)
    return {"mean": mean, "std": std, "values": [float(v) for v in values]}


def compare(config: RunConfig, model_path: Path, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Greedy trained agent vs the baselines, every policy on the same test-mode episode seeds of the env
    made with ``kwargs`` (``eval_env_kwargs``). With ``--n-envs`` N > 1 the episodes run in N worker processes of
    ``--threads`` (default 1) torch threads, as the training envs do: on 2 cores faster than one process of two
    threads, and the numbers are those of one-thread episodes whatever the machine's core count."""
    seeds = [config.eval_seed + i for i in range(config.eval_episodes)]
    policies = {config.algo: str(model_path)}
    best = config.out / "best_model.zip"
    if config.eval_freq and best.is_file():  # --eval-freq's pick, chosen on the reward set of other episodes
        policies[f"{config.algo} (best)"] = str(best)
    policies.update({name: name for name in BASELINES_TO_COMPARE})
    jobs = [ComparisonJob(row, policy, seed) for row, policy in policies.items() for seed in seeds]
    setup = ComparisonSetup(config.env_id, kwargs, config.algo, config.seed, config.device)
    workers = min(config.n_envs, len(jobs))
    base_env = gym.make(config.env_id, **kwargs)
    played: dict[str, dict[int, dict[str, float]]] = {row: {} for row in policies}
    for job, result in play_jobs(jobs, setup, base_env, workers, config.threads):
        played[job.row][job.seed] = result
        if len(played[job.row]) == len(seeds):
            seconds = sum(r["seconds"] for r in played[job.row].values())
            print(f"compared {job.row}: {len(seeds)} episodes, {seconds:.0f} s of episode time", flush=True)
    rows: dict[str, dict[str, Any]] = {}
    for row in policies:
        episodes = [played[row][seed] for seed in seeds]
        rows[row] = {key: summarize([e[key] for e in episodes]) for key in ("final_miou", "test_miou", "return")}
        rows[row]["seconds"] = sum(e["seconds"] for e in episodes)
    summary = env_summary(SinglePoolWrapper(base_env) if config.algo == "DQN" else base_env)
    base_env.close()
    reference = best_baseline(rows)
    return {
        "env_id": config.env_id,
        "algo": config.algo,
        "eval_env_kwargs": kwargs,
        "eval_env": summary,
        "episodes": len(seeds),
        "seeds": seeds,
        "workers": workers,
        "deterministic": True,
        "policies": rows,
        "reference": reference,
        "paired": paired_with(rows, reference),
    }


def best_baseline(rows: dict[str, dict[str, Any]]) -> str:
    """The baseline with the highest mean test mIoU on these episodes: the rule a learned agent has to beat."""
    return max(BASELINES_TO_COMPARE, key=lambda name: rows[name]["test_miou"]["mean"])


def paired_with(rows: dict[str, dict[str, Any]], reference: str) -> dict[str, dict[str, Any]]:
    """Each policy's test mIoU minus the reference's on the same episodes, in mIoU points: mean, sd, SE and the
    episodes the difference would need for 2 SE (``paired_difference``). Why paired: the episodes' own spread
    (about 1 point on the synthetic preset) is shared by every policy and cancels in the difference."""
    reference_values = rows[reference]["test_miou"]["values"]
    return {
        name: paired_difference([100 * v for v in row["test_miou"]["values"]], [100 * v for v in reference_values])
        for name, row in rows.items()
        if name != reference
    }


def comparison_table(comparison: dict[str, Any]) -> str:
    """Markdown table; mIoU in % (x100, the reward's scale), mean ± std over the episodes, and each policy's
    paired test-mIoU difference with the best baseline, mean ± SE over the same episodes."""
    reference = comparison["reference"]
    lines = [
        f"{comparison['env_id']}, mode=test, {comparison['episodes']} episodes (seeds {comparison['seeds']}), "
        f"budget {comparison['eval_env']['budget']} regions, {describe_test_scoring(comparison['eval_env'])}",
        "",
        f"| policy | final D_R mIoU (%) | test mIoU (%) | mean return | test mIoU - {reference} (paired) |",
        "|---|---|---|---|---|",
    ]
    for name, row in comparison["policies"].items():
        cells = [f"{100 * row[k]['mean']:.2f} ± {100 * row[k]['std']:.2f}" for k in ("final_miou", "test_miou")]
        lines.append(
            f"| {name} | {cells[0]} | {cells[1]} | {row['return']['mean']:.2f} | {_paired_cell(comparison, name)} |"
        )
    lines += [
        "",
        f"Paired: mean ± SE of the per-episode difference with {reference}, the best baseline here. A difference "
        "smaller than 2 SE is not told apart from the episodes' noise; more --eval-episodes shrink the SE.",
    ]
    return "\n".join(lines) + "\n"


def _paired_cell(comparison: dict[str, Any], name: str) -> str:
    if name == comparison["reference"]:
        return "(reference)"
    paired = comparison["paired"][name]
    return f"{paired['mean']:+.2f} ± {se_text(paired['se'])}"


def describe_test_scoring(settings: dict[str, Any]) -> str:
    """How the test mIoU column was made, from the comparison env's resolved settings."""
    if not settings.get("final_training"):
        return "test mIoU of the episode's fine-tuned network"
    start = "the start network" if settings.get("final_start") == "start" else "the episode's network"
    seeds = ", fixed seeds" if settings.get("final_seed") == "fixed" else ""
    return f"test mIoU after a {settings['final_steps']}-step final training from {start}{seeds} on the labels"
