"""``segal-select-rule``: which labelling rule to use on this data set, learned from the env's own reward.

The best heuristic may differ by data set, and a user should not have to know it in advance. This command
plays every rule on the same episodes, scored on the reward set D_R (never the test split), and keeps dropping
the rules that a paired t test shows behind the leader (``--alpha``: the chance of dropping a level rule over
the whole selection; ``agents.rule_choice.RuleSelection``). An episode scores the D_R mIoU after the test
mode's final training on its labels (``--score final``, the default: what the benchmark reports, at one final
training per episode) or its return (``--score return``: the D_R gain of the network fine-tuned during the
episode). It prints the table and the chosen rule (the leader; with ``--incumbent RULE``, that rule unless it was dropped), which
``segal-request --policy`` and ``evaluate.py --policies`` take by name.

``--mode train`` (default) plays train-mode episodes: pool D_T, from the train mode's start network (the state
set D_S's). ``--mode test`` plays test-mode episodes, the regime the benchmark measures and a user deploys in:
pool D_V, from the test mode's start network (D_T's on CamVid), the test budget (``--env-kwargs budget=...``).
The two can disagree: on CamVid a train-mode selection dropped an error model that the test protocol puts ahead
of margin (docs/dqn.md).

    segal-select-rule                                              # synthetic preset, 40 episodes
    segal-select-rule --env SegAL-Folder-v0 --env-kwargs root=my_data --episodes 30 --out selection.json
    segal-select-rule --rules margin my_error_model.npz        # a rule against an error model fitted on this env
    segal-select-rule --mode test --rules margin my_error_model.npz --seed 1000   # in the deployment regime
    segal-select-rule --mode test --rules margin my_error_model.npz --incumbent margin   # margin unless beaten

With ``--out``, the state is written after every round and a rerun with the same settings continues it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym

from agents.rule_choice import DEFAULT_RULES, RuleChoiceWrapper, RuleSelection, check_rules
from experiments.provenance import provenance
from segal_env import DEFAULT_ENV_ID
from segal_env.config import parse_env_settings
from segal_env.runtime import thread_count, torch_threads
from segal_env.storage import atomic_write_json

MODES = ("train", "test")
DEFAULT_ALPHA = 0.05


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0].replace("``", ""))
    parser.add_argument("--env", default=DEFAULT_ENV_ID, help=f"registered SegAL env id (default {DEFAULT_ENV_ID})")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE", help="env keyword arguments")
    parser.add_argument(
        "--rules",
        nargs="+",
        default=list(DEFAULT_RULES),
        help="candidate rules: baseline names (agents.BASELINES) or error models (.npz, segal-fit-error-model)",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="train",
        help="train: pool D_T, the train mode's start network (default); test: pool D_V, the test mode's start "
        "network and budget (the regime the benchmark measures)",
    )
    parser.add_argument("--episodes", type=int, default=40, help="episodes in all, every rule (default 40)")
    parser.add_argument(
        "--incumbent",
        metavar="RULE",
        help="one of --rules, chosen unless it is dropped (shown behind the leader): a selection that cannot "
        "tell the rules apart then returns it rather than a leader by chance (default: none, the leader is chosen)",
    )
    parser.add_argument("--min-rounds", type=int, default=3, help="rounds before any rule is dropped (default 3)")
    parser.add_argument(
        "--alpha",
        type=float,
        help="drop a rule behind the leader by a one-sided paired t test at ALPHA, split over a few looks "
        "(rounds --min-rounds x 1, 2, 4, ... and the last one --episodes allows), so a rule level with the "
        "leader is dropped in about ALPHA of selections (default 0.05)",
    )
    parser.add_argument(
        "--z",
        type=float,
        help="instead of --alpha, drop a rule Z paired SE behind after any round: the rule of selections made "
        "before --alpha existed (z = 2 drops a level rule in 19%% of 40-episode selections)",
    )
    parser.add_argument(
        "--score",
        choices=RuleSelection.SCORES,
        default="final",
        help="an episode's worth: the D_R mIoU after the final training on its labels (default) or its return "
        "(the D_R gain during the episode; cheaper)",
    )
    parser.add_argument("--seed", type=int, default=0, help="round r plays episode seed SEED + r (default 0)")
    parser.add_argument(
        "--threads",
        type=thread_count,
        default=1,
        help="torch threads (default 1: the scores then do not depend on the machine's core count)",
    )
    parser.add_argument("--out", type=Path, help="JSON file of the selection, written after every round")
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        env_kwargs = parse_env_settings(args.env_kwargs, "--env-kwargs")
    except ValueError as error:
        parser.error(str(error))
    if "mode" in env_kwargs:
        parser.error("--env-kwargs: 'mode' is set by --mode (train or test)")
    if args.mode == "test" and "final_training" in env_kwargs:
        parser.error("--env-kwargs: 'final_training' is set by the selection (its score is the reward set's, --score)")
    try:
        check_rules(args.rules)
    except ValueError as error:
        parser.error(f"--rules: {error}")
    if args.incumbent is not None and args.incumbent not in args.rules:
        parser.error(f"--incumbent {args.incumbent} is not one of --rules {args.rules}")
    if args.z is not None and args.alpha is not None:
        parser.error("--alpha and --z are two drop rules: give one")
    if args.z is None and args.alpha is None:
        args.alpha = DEFAULT_ALPHA
    if args.alpha is not None and not 0 < args.alpha < 0.5:
        parser.error(f"--alpha {args.alpha:g}: the chance of dropping a level rule must be in (0, 0.5), e.g. 0.05")
    if args.min_rounds < 2:
        parser.error(f"--min-rounds {args.min_rounds}: a paired SE needs two rounds, give 2 or more")
    if args.z is not None and not args.z > 0:
        parser.error(f"--z {args.z:g}: a number of standard errors must be > 0, e.g. 2")
    if args.episodes < len(args.rules):
        parser.error(f"--episodes {args.episodes} is less than one round of the {len(args.rules)} rules")
    with torch_threads(args.threads):
        return _select(args, env_kwargs, parser)


def _select(args: argparse.Namespace, env_kwargs: dict[str, Any], parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The selection proper, on the torch threads ``main`` set."""
    try:
        env = RuleChoiceWrapper(
            gym.make(args.env, **mode_kwargs(args.mode), **env_kwargs), rules=args.rules, seed=args.seed
        )
        incumbent = None if args.incumbent is None else args.rules.index(args.incumbent)
        selection = RuleSelection(
            env, args.min_rounds, args.alpha or DEFAULT_ALPHA, args.seed, args.score, incumbent=incumbent, z=args.z
        )
    except (gym.error.Error, TypeError, ValueError) as error:
        parser.error(f"cannot set up the selection on {args.env}: {error}")
    settings = {"env": args.env, "env_kwargs": env_kwargs, "rules": args.rules, "min_rounds": args.min_rounds}
    settings.update({"alpha": args.alpha} if args.z is None else {"z": args.z})  # selections before --alpha: z
    settings.update(seed=args.seed, score=args.score, mode=args.mode)
    if args.out is not None and args.out.is_file():
        stored = json.loads(args.out.read_text())
        stored_settings = {"mode": "train", **stored.get("settings", {})}  # selections stored before --mode: train
        if "z" in stored_settings and "z" not in settings:
            parser.error(
                f"--out {args.out} holds a selection made with the drop rule --z {stored_settings['z']:g}: "
                f"add --z {stored_settings['z']:g} to continue it, or use another --out"
            )
        if stored_settings != settings:
            parser.error(f"--out {args.out} holds a selection with other settings; use another --out")
        selection.restore(**stored["state"])
        print(f"continuing {args.out}: {sum(len(r) for r in selection.returns)} episodes played", flush=True)

    def report(current: RuleSelection) -> None:
        played = sum(len(r) for r in current.returns)
        alive = ", ".join(current.env.rule_names[i] for i in current.alive)
        print(f"{played}/{args.episodes} episodes; leader {current.env.rule_names[current.leader]}; in: {alive}")
        if args.out is not None:
            atomic_write_json(record(current, settings), args.out)

    selection.learn(args.episodes, on_round=report)
    env.close()
    result = record(selection, settings)
    if args.out is not None:
        atomic_write_json(result, args.out)
    print("\n" + table(result))
    return result


def mode_kwargs(mode: str) -> dict[str, Any]:
    """The env keywords of a selection mode. A test-mode env would run the final training at its last step to
    score the test split; the selection skips it (``final_training=False``): its score's final training is
    ``reward_set_final_score``'s, on the reward set. (The env's last step still puts the test mIoU of its network
    in ``info``; the selection never reads it.)"""
    return {"mode": mode} if mode == "train" else {"mode": mode, "final_training": False}


def record(selection: RuleSelection, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "settings": settings,
        "chosen": selection.env.rule_names[selection.chosen],
        "leader": selection.env.rule_names[selection.leader],
        "incumbent": None if selection.incumbent is None else selection.env.rule_names[selection.incumbent],
        "rules": selection.summary(),
        "state": selection.state(),
        "looks": selection.looks if selection.z is None else None,  # the rounds the t test looks at
        "versions": provenance("cpu"),
    }


def drop_rule(result: dict[str, Any]) -> str:
    """The stored selection's drop rule in words."""
    settings = result["settings"]
    if "z" in settings:
        return f"{settings['z']:g} paired SE behind the leader, after every round from round {settings['min_rounds']}"
    test = f"a one-sided paired t test at alpha {settings['alpha']:g}"
    looks = result.get("looks")
    if not looks:
        return f"{test}, but the episodes end before its first look (round {settings['min_rounds']})"
    return f"{test}, at rounds {', '.join(map(str, looks))} ({settings['alpha'] / len(looks):.3g} each)"


def table(result: dict[str, Any]) -> str:
    """The selection as markdown: per rule its episodes, mean score and paired difference to the leader."""
    score = "mean D_R mIoU after the final training" if result["settings"].get("score") == "final" else "mean return"
    mode = result["settings"].get("mode", "train")
    lines = [
        f"{mode}-mode episodes from seed {result['settings']['seed']}; a rule is dropped by {drop_rule(result)}",
        "",
        f"| rule | episodes | {score} (D_R points) | minus the leader (SE) | still in |",
        "|---|---:|---:|---:|---|",
    ]
    for name, row in sorted(result["rules"].items(), key=lambda item: -item[1]["mean_return"]):
        se = row["minus_leader_se"]
        difference = f"{row['minus_leader']:+.2f} ({se:.2f})" if se is not None else "-"
        lines.append(
            f"| {name} | {row['episodes']} | {row['mean_return']:.2f} | {difference} | "
            f"{'yes' if row['survived'] else 'no'} |"
        )
    chosen = result["chosen"]
    why = ""
    if chosen != result.get("leader", chosen):
        why = f", the incumbent: the leader {result['leader']} is not {shown_ahead(result['settings'])}"
    lines += [
        "",
        f"chosen: {chosen}{why} (use it as `segal-request --policy {chosen}` or `evaluate.py --policies {chosen}`)",
    ]
    return "\n".join(lines)


def shown_ahead(settings: dict[str, Any]) -> str:
    """What a leader must be to replace the incumbent, under the stored selection's drop rule."""
    if "z" in settings:
        return f"{settings['z']:g} SE ahead of it"
    return f"ahead of it by a paired t test at alpha {settings['alpha']:g} (over the looks the episodes allow)"


def cli(argv: list[str] | None = None) -> int:
    """The ``segal-select-rule`` command: exit status 0 (usage errors exit 2 from argparse)."""
    main(argv)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
