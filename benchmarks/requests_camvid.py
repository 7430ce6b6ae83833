"""segal-request on real images treated as unlabelled: which classes do the requested CamVid regions hold?

The paper's test-mode protocol as a user would live it: the labelled set is D_T (100 CamVid images with
labels), the unlabelled folder is D_V (257 images, labels hidden from the tool), and the network is the env's
start network for that setting (trained on D_T; cached). Each policy requests --budget regions (24 pools of
10 candidates per step, 45x40 regions at half resolution, as in docs/benchmark_camvid.md) for every seed;
afterwards the real D_V labels say what the requested regions hold. The rare classes are the rarer half of
the classes by pixel share in D_V. Paired by seed (the same network; the seed draws the pools).

    python benchmarks/requests_camvid.py                       # random, entropy, bald; seeds 0 1 2; ~20 min on 2 cores
    python benchmarks/requests_camvid.py --agent results/camvid-cpu/dqn/model.zip   # plus a trained agent

Writes <out>.json / <out>.md, per-run folders under --work (requests.json, Label Studio tasks, overlays) and,
with --figure, one overlay as a PNG for docs/requests.md. A rerun reuses the finished runs in --work.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from PIL import Image

import segal_env  # noqa: F401
from experiments.benchmark.statistics import mean_std, paired_difference
from experiments.requests import request_labels
from segal_env.data.camvid import CAMVID_CLASSES, CAMVID_VOID
from segal_env.storage import atomic_save, atomic_write_json, atomic_write_text

REPO = Path(__file__).resolve().parents[1]
REGION = (45, 40)  # at half resolution, as docs/benchmark_camvid.md
SCALE = 0.5


def link_folders(root: Path, roles: dict, work: Path) -> tuple[Path, Path, Path]:
    """labeled/{images,labels} <- D_T, unlabeled/ <- D_V images, truth/ <- D_V labels (symbolic links)."""

    def find(name: str, annot: bool) -> Path:
        for split in ("train", "val", "test"):
            path = root / (f"{split}annot" if annot else split) / name
            if path.is_file():
                return path
        raise FileNotFoundError(f"{name} of ralis_splits.json is not in {root}/{{train,val,test}}")

    labeled, unlabeled, truth = work / "labeled", work / "unlabeled", work / "truth"
    for folder in (labeled / "images", labeled / "labels", unlabeled, truth):
        folder.mkdir(parents=True, exist_ok=True)
    for name in roles["d_t"]:
        for target, annot in ((labeled / "images" / name, False), (labeled / "labels" / name, True)):
            if not target.exists():
                target.symlink_to(find(name, annot).resolve())
    for name in roles["d_v"]:
        for target, annot in ((unlabeled / name, False), (truth / name, True)):
            if not target.exists():
                target.symlink_to(find(name, annot).resolve())
    return labeled, unlabeled, truth


def start_network(root: Path, roles_file: Path, path: Path) -> Path:
    """The SegAL-CamVid-v0 test-mode start network (pre-trained on D_T and cached by the env) as network.pt."""
    if not path.is_file():
        env = gym.make(
            "SegAL-CamVid-v0",
            data_root=str(root),
            roles_file=str(roles_file),
            scale=SCALE,
            region_size=list(REGION),
            mode="test",
        )
        env.reset(seed=0)
        state = {k: v.detach().cpu() for k, v in env.unwrapped.trainer.model.state_dict().items()}
        atomic_save({"model": state, "arch": "lraspp_mobilenet_v3", "class_names": list(CAMVID_CLASSES)}, path)
    return path


def requested_classes(requests: dict, truth: Path) -> np.ndarray:
    """Pixels per class (void left out) inside the requested boxes, from the real labels."""
    counts = np.zeros(len(CAMVID_CLASSES), dtype=np.int64)
    for image in requests["images"]:
        label = np.asarray(Image.open(truth / image["file"]))
        for region in image["regions"]:
            b = region["box"]
            crop = label[b["y"] : b["y"] + b["height"], b["x"] : b["x"] + b["width"]]
            counts += np.bincount(crop[crop != CAMVID_VOID].ravel(), minlength=len(CAMVID_CLASSES))[
                : len(CAMVID_CLASSES)
            ]
    return counts


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data" / "camvid")
    parser.add_argument("--policies", nargs="+", default=["random", "entropy", "bald"])
    parser.add_argument("--agent", type=Path, help="a BatchDQN trained on CamVid's train mode at this scale and grid")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=240)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("results/requests-camvid"))
    parser.add_argument(
        "--figure", type=Path, help="copy the first seed's overlay of the image --figure-policy chose most in"
    )
    parser.add_argument("--figure-policy", default="entropy")
    parser.add_argument("--out", default="benchmarks/results/requests_camvid")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    roles_file = args.data_root / "ralis_splits.json"
    roles = json.loads(roles_file.read_text())
    labeled, unlabeled, truth = link_folders(args.data_root, roles, args.work)
    network = start_network(args.data_root, roles_file, args.work / "network.pt")

    truth_counts = sum(
        np.bincount(np.asarray(Image.open(p)).ravel(), minlength=256)[: len(CAMVID_CLASSES)]
        for p in sorted(truth.iterdir())
    )
    share = truth_counts / truth_counts.sum()
    rare = sorted(int(c) for c in np.argsort(share, kind="stable")[: len(CAMVID_CLASSES) // 2])

    policies = {name: name for name in args.policies}
    if args.agent is not None:
        policies["BatchDQN"] = str(args.agent)
    runs: dict[str, dict[int, dict]] = {}
    for label, policy in policies.items():
        for seed in args.seeds:
            out = args.work / "requests" / f"{label}-seed{seed}"
            started = time.perf_counter()
            done = json.loads((out / "requests.json").read_text()) if (out / "requests.json").is_file() else None
            if done is not None and (done["settings"]["budget"], done["settings"]["policy"]) == (
                args.budget,
                str(policy),
            ):
                requests = done
            else:
                requests = request_labels(
                    unlabeled,
                    labeled,
                    CAMVID_CLASSES,
                    policy,
                    args.budget,
                    REGION,
                    out,
                    model_file=network,
                    num_pools=24,
                    pool_size=10,
                    scale=SCALE,
                    ignore_index=CAMVID_VOID,
                    seed=seed,
                    overlays=seed == 0,
                )
            counts = requested_classes(requests, truth)
            fraction = counts / max(counts.sum(), 1)
            runs.setdefault(label, {})[seed] = {
                "rare_share": float(fraction[rare].sum()),
                "class_fraction": fraction.tolist(),
                "images": len(requests["images"]),
                "seconds": time.perf_counter() - started,
            }
            print(
                f"{label} seed {seed}: rare-class share {100 * fraction[rare].sum():.1f}% in "
                f"{len(requests['images'])} images",
                flush=True,
            )

    summary = {
        "settings": {
            "budget": args.budget,
            "region_size": list(REGION),
            "scale": SCALE,
            "num_pools": 24,
            "pool_size": 10,
            "seeds": args.seeds,
            "policies": policies,
            "labeled": "D_T (100 images)",
            "unlabeled": "D_V (257 images)",
        },
        "rare_classes": [CAMVID_CLASSES[c] for c in rare],
        "unlabeled_class_share": dict(zip(CAMVID_CLASSES, share.tolist())),
        "runs": runs,
        "rare_share": {
            p: dict(zip(("mean", "sd"), mean_std([r["rare_share"] for r in runs[p].values()]))) for p in runs
        },
        "minus_random": {
            p: paired_difference(
                [runs[p][s]["rare_share"] for s in args.seeds], [runs["random"][s]["rare_share"] for s in args.seeds]
            )
            for p in runs
            if p != "random" and "random" in runs
        },
    }
    lines = [
        f"CamVid, labelled D_T, unlabelled D_V, {args.budget} regions of {REGION[0]}x{REGION[1]} at half resolution, "
        f"seeds {args.seeds}; rare classes (rarer half in D_V): {', '.join(summary['rare_classes'])}",
        "",
        "| policy | rare-class pixels (% of labelled, mean ± sd) | minus random (SE, paired) | images touched |",
        "|---|---:|---:|---:|",
    ]
    for p in runs:
        diff = summary["minus_random"].get(p)
        cell = "" if diff is None else f"{100 * diff['mean']:+.1f} ({100 * diff['se']:.1f})"
        images = np.mean([r["images"] for r in runs[p].values()])
        lines.append(
            f"| {p} | {100 * summary['rare_share'][p]['mean']:.1f} ± {100 * summary['rare_share'][p]['sd']:.1f} "
            f"| {cell} | {images:.0f} |"
        )
    lines += [
        "",
        "Class share of the requested pixels (%, mean over seeds):",
        "",
        "| policy | " + " | ".join(CAMVID_CLASSES) + " |",
        "|---|" + "---:|" * len(CAMVID_CLASSES),
    ]
    for p in runs:
        mean = np.mean([r["class_fraction"] for r in runs[p].values()], axis=0)
        lines.append(f"| {p} | " + " | ".join(f"{100 * v:.1f}" for v in mean) + " |")
    lines.append("| D_V (all pixels) | " + " | ".join(f"{100 * v:.1f}" for v in share) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_json(summary, f"{args.out}.json")
    atomic_write_text(text, f"{args.out}.md")
    if args.figure is not None:
        run = args.work / "requests" / f"{args.figure_policy}-seed{args.seeds[0]}"
        requests = json.loads((run / "requests.json").read_text())
        stem = Path(max(requests["images"], key=lambda i: len(i["regions"]))["file"]).stem
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run / "overlays" / f"{stem}.png", args.figure)
    return summary


if __name__ == "__main__":
    main()
