"""Does the env's fine-tuning step keep what the starting network knows?

Re-trains a starting network on its own fully labeled start images (D_S in train mode), with the env's
fine-tuning machinery and a chosen optimizer / BatchNorm mode / crop, and prints the D_R mIoU after
each epoch. A fine-tuning set-up that lowers D_R mIoU on data the network has already seen will also
lose mIoU inside episodes (docs/environment.md, "BatchNorm during fine-tuning").

    python benchmarks/retrain_start_net.py --env SegAL-CamVid-v0 \
        --env-kwargs '{"data_root": "../shared/data/camvid", "scale": 0.5, "region_size": [45, 40]}' \
        --settings '[{"freeze_bn": true}, {"freeze_bn": false}]' --crop 112 112
"""

from __future__ import annotations

import argparse
import json

import gymnasium as gym
import torch

import segal_env  # noqa: F401  (registers the ids)
from segal_env.storage import atomic_write_json
from segal_env.trainer import whole_image_boxes


def retrain(env_id: str, env_kwargs: dict, setting: dict, crop: tuple[int, int] | None, epochs: int) -> list[float]:
    env = gym.make(env_id, **env_kwargs, **setting)
    env.reset(seed=0)
    u = env.unwrapped
    start = u.roles.d_s if u.config.start_set == "d_s" else u.roles.d_t
    images, labels = start.images.to(u.device), start.labels.long().to(u.device)
    n, (height, width) = images.shape[0], start.image_size
    boxes = whole_image_boxes(n, (height, width))
    generator = torch.Generator().manual_seed(0)
    curve = [u.trainer.evaluate(u.roles.d_r.images, u.roles.d_r.labels).miou]
    for _ in range(epochs):
        u.trainer.train_epoch(images, labels, torch.arange(n), boxes, crop or (height, width), generator)
        curve.append(u.trainer.evaluate(u.roles.d_r.images, u.roles.d_r.labels).miou)
    return curve


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="SegAL-Synthetic-v0")
    parser.add_argument("--env-kwargs", default="{}", help="JSON dict of env kwargs shared by every setting")
    parser.add_argument(
        "--settings",
        default='[{"freeze_bn": true}, {"freeze_bn": false}]',
        help="JSON list of env kwargs to compare (optimizer, lr, freeze_bn, batch_size, ...)",
    )
    parser.add_argument("--crop", type=int, nargs=2, default=None, help="crop height width (default: whole images)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/retrain_start_net.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    env_kwargs = json.loads(args.env_kwargs)
    rows = []
    for setting in json.loads(args.settings):
        curve = retrain(args.env, env_kwargs, setting, tuple(args.crop) if args.crop else None, args.epochs)
        rows.append(
            {"env": args.env, "env_kwargs": env_kwargs, "setting": setting, "crop": args.crop, "reward_set_miou": curve}
        )
        print(f"{json.dumps(setting)}: D_R mIoU per epoch {', '.join(f'{v:.3f}' for v in curve)}", flush=True)
    atomic_write_json(rows, args.out)
    return rows


if __name__ == "__main__":
    main()
