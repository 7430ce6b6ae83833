"""After training: the trained agent (greedy) against the baselines on the same held-out test episodes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gymnasium as gym

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


def run_episodes(agent: Any, env: gym.Env, seeds: list[int]) -> dict[str, list[float]]:
    """One greedy episode per seed: final D_R mIoU, test mIoU and return of each."""
    episodes = [play_episode(agent, env, seed) for seed in seeds]
    return {
        "final_miou": [float(e.final_info["miou"]) for e in episodes],
        "test_miou": [float(e.final_info.get("test_miou", float("nan"))) for e in episodes],
        "return": [e.total_reward for e in episodes],
    }


def summarize(values: list[float]) -> dict[str, Any]:
    """Mean, sample std (ddof=1, the benchmark's ``mean_std``; 0 for one episode) and the values of one column."""
    mean, std = mean_std(values)
    return {"mean": mean, "std": std, "values": [float(v) for v in values]}


def compare(config: RunConfig, model_path: Path, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Greedy trained agent vs the baselines, every policy on the same test-mode episode seeds of the env
    made with ``kwargs`` (``eval_env_kwargs``)."""
    base_env = gym.make(config.env_id, **kwargs)
    agent_env = SinglePoolWrapper(base_env) if config.algo == "DQN" else base_env
    seeds = [config.eval_seed + i for i in range(config.eval_episodes)]
    policies = {config.algo: (make_agent(model_path, agent_env, seed=config.seed, device=config.device), agent_env)}
    best = config.out / "best_model.zip"
    if config.eval_freq and best.is_file():  # --eval-freq's pick, chosen on the reward set of other episodes
        policies[f"{config.algo} (best)"] = (
            make_agent(best, agent_env, seed=config.seed, device=config.device),
            agent_env,
        )
    for name in BASELINES_TO_COMPARE:
        policies[name] = (make_agent(name, base_env, seed=config.seed), base_env)
    rows: dict[str, dict[str, Any]] = {}
    for name, (agent, env) in policies.items():
        started = time.perf_counter()
        episodes = run_episodes(agent, env, seeds)
        rows[name] = {key: summarize(values) for key, values in episodes.items()}
        rows[name]["seconds"] = time.perf_counter() - started
        print(f"compared {name}: {len(seeds)} episodes in {rows[name]['seconds']:.0f} s", flush=True)
    base_env.close()
    reference = best_baseline(rows)
    return {
        "env_id": config.env_id,
        "algo": config.algo,
        "eval_env_kwargs": kwargs,
        "eval_env": env_summary(agent_env),
        "episodes": len(seeds),
        "seeds": seeds,
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
