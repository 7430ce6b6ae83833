"""How much can the test mode's final training get out of more labels at all? Whole random pool images, no selection.

A selector can only show its worth where the score still rises with labels. This script labels every region of
N random pool images (N x regions-per-image labeled regions, picked by no policy), scores each set with the
quiet final training (from the start network, the env's fixed seed), and prints the curve from the start set
alone (N = 0) up to the whole pool. If even the whole pool adds little, the final training, not the labels, is
what flattens a policy's curve.

    python benchmarks/final_training_curve.py --env SegAL-CamVid-v0 --env-kwargs data_root=../shared/data/camvid \\
        scale=0.5 'region_size=[45,40]' --images 0 8 32 96 257 --out benchmarks/results/final_training_curve_camvid

Results (test and D_R mIoU, %) go to ``<out>.json`` / ``<out>.md``, written atomically.
"""

from __future__ import annotations

import argparse
import platform

import gymnasium as gym
import numpy as np
import torch
from final_training_floor import final_test_and_reward_set  # benchmarks/ is the script's folder

import segal_env  # noqa: F401  (registers the ids)
from segal_env.config import parse_key_values
from segal_env.storage import atomic_write_json, atomic_write_text


def pool_size(env: gym.Env) -> int:
    """Images in the env's pool (D_V in test mode)."""
    return int(env.unwrapped.labeled.labeled.shape[0])


def whole_image_scores(env: gym.Env, images: int, draw: int) -> tuple[float, float]:
    """(test, D_R) mIoU in % after the env's final training on the start set plus every region of ``images``
    pool images drawn at random (``draw`` seeds the draw); the env is reset first, so nothing else is labeled."""
    env.reset(seed=0)
    u = env.unwrapped
    pool_images = pool_size(env)
    if not 0 <= images <= pool_images:
        raise ValueError(f"--images {images}: the pool holds {pool_images} images")
    chosen = torch.as_tensor(np.random.default_rng(draw).choice(pool_images, size=images, replace=False))
    per_image = u.grid.per_image
    region_ids = (chosen[:, None] * per_image + torch.arange(per_image)[None]).flatten()
    u.labeled.mark(region_ids.to(u.labeled.labeled.device))
    return final_test_and_reward_set(env, u.config.checkpoint_seed)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="SegAL-Synthetic-v0")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--images", type=int, nargs="+", default=[0, 2, 8, 24], help="whole pool images per set")
    parser.add_argument("--draws", type=int, default=1, help="random image draws per count (seeds 0..n-1)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/final_training_curve")
    args = parser.parse_args(argv)
    if args.draws < 1 or min(args.images) < 0:
        parser.error("--draws must be >= 1 and every --images count >= 0")
    torch.set_num_threads(args.threads)
    kwargs = parse_key_values(args.env_kwargs, "--env-kwargs")
    for key, value in (("final_start", "start"), ("final_seed", "fixed")):
        if kwargs.get(key, value) != value:
            parser.error(f"{key}={kwargs[key]!r}: the curve is the quiet scoring's ({key}={value!r})")
    kwargs = {**kwargs, "mode": "test", "final_training": True, "final_start": "start", "final_seed": "fixed"}
    env = gym.make(args.env, **kwargs)
    env.reset(seed=0)
    u = env.unwrapped
    too_many = [n for n in args.images if n > pool_size(env)]
    if too_many:  # before any training
        parser.error(f"--images {too_many}: the pool holds {pool_size(env)} images")
    rows = []
    for images in args.images:
        scores = np.array([whole_image_scores(env, images, draw) for draw in range(args.draws)])
        rows.append(
            {
                "images": images,
                "regions": images * u.grid.per_image,
                "test": scores[:, 0].tolist(),
                "reward_set": scores[:, 1].tolist(),
            }
        )
        print(f"{images} images: test {scores[:, 0].mean():.2f}, D_R {scores[:, 1].mean():.2f}", flush=True)
    result = {
        "args": vars(args),
        "start": {"test": 100 * u._start["test_miou"]},
        "pool_images": pool_size(env),
        "regions_per_image": u.grid.per_image,
        "final_steps": u.config.final_steps,
        "rows": rows,
        "machine": platform.machine(),
        "torch": torch.__version__,
    }
    lines = [
        f"Quiet final training on the start set plus N whole random pool images, {args.env} {args.env_kwargs}, "
        f"{u.config.final_steps} steps, the env's fixed seed, {args.draws} image draw(s), torch threads {args.threads}",
        "",
        "| pool images | labeled regions | test mIoU (%) | D_R mIoU (%) |",
        "|---:|---:|---:|---:|",
        f"| start network, no final training | | {result['start']['test']:.2f} | |",
        *[
            f"| {r['images']} | {r['regions']} | {np.mean(r['test']):.2f}"
            + (f" +- {np.std(r['test'], ddof=1):.2f}" if args.draws > 1 else "")
            + f" | {np.mean(r['reward_set']):.2f} |"
            for r in rows
        ],
        "",
    ]
    report = "\n".join(lines)
    atomic_write_json(result, f"{args.out}.json")
    atomic_write_text(report, f"{args.out}.md")
    print(report)
    env.close()
    return result


if __name__ == "__main__":
    main()
