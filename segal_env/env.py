"""SegALEnv: region-level active learning for segmentation as a Gymnasium environment.

One step = one active-learning step of Casanova et al. (ICLR 2020): the agent picks one
candidate region in each of K pools, the ground truth labels them, the segmentation network
is fine-tuned, and the reward is the scaled mIoU gain on the reward set D_R.
"""
from __future__ import annotations

import ctypes
import json
import os
import sys
import time
from functools import lru_cache

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from .checkpoints import load_or_pretrain
from .config import check_types
from .data import ALRoles, load_splits, make_roles
from .features import base_region_features, candidate_rows, extra_region_features
from .layout import FeatureLayout
from .models import build_model
from .presets import PRESETS, preset_value
from .regions import LabeledRegions, RegionGrid
from .render import render_state
from .trainer import LOSS_WEIGHTINGS, OptimConfig, SegTrainer, anywhere_boxes, resolve_device, seeded_torch, warmup_cosine, whole_image_boxes

DEFAULT_EXTRAS = ("entropy", "margin", "confidence", "bald")
FINETUNE_SCHEDULES = {
    "step": "one epoch over the regions labeled at this step (the paper)",
    "replay": "this step's regions plus as many samples drawn at random from the earlier labeled regions and the "
    "start set's images (constant cost; keeps what the start network learned)",
    "all": "one epoch over every labeled region (cost grows with the budget)",
}
REWARDS = {
    "gain": "reward_scale x the D_R mIoU gain of the step (the paper)",
    "gain_over_random": "the step's gain minus the gain of random picks from the same pools, fine-tuned from the same "
    "network with the same random numbers (common random numbers: training noise shared by both cancels; twice the "
    "fine-tuning cost)",
}


@lru_cache(maxsize=1)
def _tune_allocator() -> None:
    """Keep freed memory in glibc's heap instead of returning it to the OS after every tensor.

    Training loops allocate and free the same large buffers each step; with the default thresholds
    glibc unmaps and re-maps them every time. Measured on 30 U-Net train + inference steps on CPU:
    system time 1.21 s -> 0.18 s (docs/environment.md). Set SEGAL_NO_MALLOPT=1 to leave malloc alone.
    """
    if not sys.platform.startswith("linux") or os.environ.get("SEGAL_NO_MALLOPT"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl): nothing to tune
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_trim_threshold, 1 << 30)
    libc.mallopt(m_mmap_threshold, 1 << 30)


@lru_cache(maxsize=4)
def _cached_roles(dataset: str, data_root, scale: float, data_seed: int, dataset_kwargs: str, roles_file, role_sizes: str):
    """Datasets are loaded once per process: env checkers and vector envs re-create the env often."""
    splits = load_splits(dataset, root=data_root, scale=scale, seed=data_seed, **json.loads(dataset_kwargs))
    sizes = json.loads(role_sizes) if role_sizes else None
    return make_roles(dataset, splits, roles_file=roles_file, seed=data_seed, sizes=sizes)


def _or_preset(value, dataset: str, key: str, mode: str):
    return preset_value(dataset, key, mode) if value is None else value


def _scaled(size, scale: float) -> tuple[int, int] | None:
    if size is None:
        return None
    return tuple(int(round(v * scale)) for v in size)


class SegALEnv(gym.Env):
    """Pick K regions (one per pool) to label; reward = reward_scale x gain in D_R mIoU.

    Every option left at None takes the dataset's preset (segal_env/presets.py) for the mode.
    Sizes (region_size, crop_size) are (height, width) at the working resolution (after ``scale``).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(
        self,
        dataset: str = "synthetic",
        data_root: str | None = None,
        dataset_kwargs: dict | None = None,
        roles_file: str | None = None,
        role_sizes: dict | None = None,
        data_seed: int = 0,
        scale: float = 1.0,
        mode: str = "train",
        region_size: tuple[int, int] | list[int] | None = None,
        num_pools: int | None = None,
        pool_size: int | None = None,
        budget: int | None = None,
        reward_scale: float = 100.0,
        reward: str = "gain",
        model: str | None = None,
        dropout: float = 0.5,
        pretrained_backbone: bool = False,
        finetune: str | None = None,
        finetune_epochs: int | None = None,
        optimizer: str | None = None,
        lr: float | None = None,
        momentum: float = 0.95,
        weight_decay: float = 1e-4,
        max_grad_norm: float = 4.0,
        batch_size: int | None = None,
        freeze_bn: bool | None = None,
        loss_weighting: str | None = None,
        lr_decay: bool | None = None,
        crop_size: tuple[int, int] | list[int] | None = None,
        extra_features: tuple[str, ...] | list[str] = DEFAULT_EXTRAS,
        mc_samples: int = 20,
        start_set: str | None = None,
        pretrain_steps: int | None = None,
        pretrain_lr: float | None = None,
        checkpoint_seed: int = 0,
        eval_budgets: list[int] | None = None,
        final_training: bool = False,
        final_steps: int | None = None,
        cache_dir: str | None = None,
        device: str = "auto",
        render_mode: str | None = None,
        timing_in_info: bool = False,
        verbose: bool = False,
    ):
        check_types(SegALEnv.__init__, {k: v for k, v in locals().items() if k not in ("self", "__class__")}, "env keyword")
        if dataset not in PRESETS:
            raise ValueError(f"unknown dataset '{dataset}'; choose from {sorted(PRESETS)}")
        if mode not in ("train", "test"):
            raise ValueError(f"mode must be 'train' (pool D_T, for training agents) or 'test' (pool D_V), got '{mode}'")
        finetune = finetune or preset_value(dataset, "finetune", mode)
        if finetune not in FINETUNE_SCHEDULES:
            raise ValueError(f"finetune must be one of {sorted(FINETUNE_SCHEDULES)}, got '{finetune}'")
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {sorted(REWARDS)}, got '{reward}'")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got '{render_mode}'")
        extras = tuple(extra_features)
        if "bald" in extras and mc_samples < 2:
            raise ValueError("the 'bald' feature needs mc_samples >= 2; drop it from extra_features or raise mc_samples")
        _tune_allocator()
        self.render_mode = render_mode
        self.mode = mode
        self.dataset = dataset
        self.reward_scale = float(reward_scale)
        self.reward = reward
        self.finetune = finetune
        self.finetune_epochs = int(_or_preset(finetune_epochs, dataset, "finetune_epochs", mode))
        self.mc_samples = int(mc_samples)
        self.final_training = bool(final_training)
        self.final_steps = int(_or_preset(final_steps, dataset, "final_steps", mode))
        self.verbose = verbose
        # wall-clock times differ run to run, so they stay out of info unless asked for (Gymnasium's
        # determinism check compares two identical steps); env.unwrapped.last_timing always has them
        self.timing_in_info = bool(timing_in_info)
        self.last_timing: dict[str, float] = {}

        self.roles: ALRoles = _cached_roles(
            dataset, data_root, float(scale), int(data_seed), json.dumps(dataset_kwargs or {}, sort_keys=True),
            roles_file, json.dumps(role_sizes, sort_keys=True) if role_sizes else "",
        )
        pool_set = self.roles.d_t if mode == "train" else self.roles.d_v
        self.num_classes = pool_set.num_classes
        self.ignore_index = pool_set.ignore_index
        self.class_names = pool_set.class_names

        size = region_size if region_size is not None else _scaled(preset_value(dataset, "region_size", mode), scale)
        if size is None:
            raise ValueError(f"dataset '{dataset}' has no default region size: pass region_size=(height, width)")
        try:
            self.grid = RegionGrid(pool_set.image_size, size)
        except ValueError as err:
            hint = "" if region_size is not None else f" (the preset region size scaled by scale={scale}; pass region_size explicitly)"
            raise ValueError(f"{err}{hint}") from None
        self.num_pools = int(num_pools or preset_value(dataset, "num_pools", mode))
        self.pool_size = int(pool_size or preset_value(dataset, "pool_size", mode))
        self.budget = int(budget or preset_value(dataset, "budget", mode))
        pool_regions = len(pool_set) * self.grid.per_image
        if self.budget % self.num_pools:
            raise ValueError(
                f"budget {self.budget} is not a multiple of num_pools={self.num_pools} (each step labels one region "
                f"per pool); use e.g. budget={self.budget // self.num_pools * self.num_pools or self.num_pools}"
            )
        if self.budget > pool_regions:
            raise ValueError(
                f"budget {self.budget} is larger than the pool: {len(pool_set)} images x {self.grid.per_image} regions = "
                f"{pool_regions} regions; lower the budget or use larger pools/smaller regions"
            )
        self.eval_budgets = sorted(set(int(b) for b in (eval_budgets or [])))
        bad = [b for b in self.eval_budgets if b % self.num_pools or b <= 0 or b > self.budget]
        if bad:
            raise ValueError(f"eval_budgets {bad} must be positive multiples of num_pools={self.num_pools} and <= budget={self.budget}")
        crop = crop_size if crop_size is not None else _scaled(preset_value(dataset, "crop_size", mode), scale)
        height, width = pool_set.image_size
        crop = crop or (height, width)
        self.crop_size = (max(min(int(crop[0]), height), self.grid.region_size[0]), max(min(int(crop[1]), width), self.grid.region_size[1]))

        self.layout = FeatureLayout(self.num_classes, extras)
        self.device = resolve_device(device)
        self.start_set = start_set or preset_value(dataset, "start_set", mode)
        if self.start_set not in ("d_s", "d_t", "none"):
            raise ValueError(f"start_set must be 'd_s', 'd_t' or 'none', got '{self.start_set}'")
        model = model or preset_value(dataset, "model", mode)
        self._model_name, self._dropout, self._pretrained = model, float(dropout), bool(pretrained_backbone)
        self._optim = OptimConfig(
            _or_preset(optimizer, dataset, "optimizer", mode), _or_preset(lr, dataset, "lr", mode),
            momentum, weight_decay, max_grad_norm,
        )
        if self._optim.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got '{self._optim.optimizer}'")
        self._batch_size = int(_or_preset(batch_size, dataset, "batch_size", mode))
        self._freeze_bn = bool(_or_preset(freeze_bn, dataset, "freeze_bn", mode))
        self.loss_weighting = _or_preset(loss_weighting, dataset, "loss_weighting", mode)
        self.lr_decay = bool(_or_preset(lr_decay, dataset, "lr_decay", mode))
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"loss_weighting must be one of {sorted(LOSS_WEIGHTINGS)}, got '{self.loss_weighting}'")
        if self._batch_size < 1 or self.finetune_epochs < 0:
            raise ValueError(f"batch_size must be >= 1 and finetune_epochs >= 0, got {self._batch_size} and {self.finetune_epochs}")
        self._pretrain = dict(
            steps=int(_or_preset(pretrain_steps, dataset, "pretrain_steps", mode)),
            seed=int(checkpoint_seed),
            lr=float(_or_preset(pretrain_lr, dataset, "pretrain_lr", mode)),
        )
        if self._pretrain["steps"] < 1 or self.final_steps < 1:
            raise ValueError(f"pretrain_steps and final_steps must be >= 1, got {self._pretrain['steps']} and {self.final_steps}")
        self._cache_dir = cache_dir
        self._checkpoint_description = {
            "dataset": dataset,
            "dataset_kwargs": dataset_kwargs or {},
            "data_seed": data_seed,
            "scale": scale,
            "roles": self.roles.to_dict(),
            "start_set": self.start_set,
            "model": model,
            "dropout": dropout,
            "pretrained_backbone": pretrained_backbone,
        }

        n_state = len(self.roles.d_s) * self.grid.per_image
        k, n = self.num_pools, self.pool_size
        self.observation_space = spaces.Dict(
            {
                "state": spaces.Box(0.0, 1.0, (n_state, self.layout.state_dim), np.float32),
                "candidates": spaces.Box(0.0, 1.0, (k, n, self.layout.candidate_dim), np.float32),
                "action_mask": spaces.Box(0.0, 1.0, (k, n), np.float32),
                "labeled_class_fraction": spaces.Box(0.0, 1.0, (self.num_classes,), np.float32),
            }
        )
        self.action_space = spaces.MultiDiscrete([n] * k)
        self._ready = False  # heavy set-up (device tensors, starting network) happens at the first reset

    # ---- set-up ------------------------------------------------------------------------
    @property
    def feature_layout(self) -> FeatureLayout:
        return self.layout

    def _setup(self) -> None:
        dev = self.device
        pool_set = self.roles.d_t if self.mode == "train" else self.roles.d_v
        self._pool_images = pool_set.images.to(dev)
        self._pool_labels = pool_set.labels.to(dev)
        self._pool_gt_hist = self.grid.class_histograms(self._pool_labels, self.num_classes).view(-1, self.num_classes)
        self._state_images = self.roles.d_s.images.to(dev)
        self._reward_images, self._reward_labels = self.roles.d_r.images.to(dev), self.roles.d_r.labels.to(dev)
        self.labeled = LabeledRegions(self.grid, len(pool_set), dev)

        def build():
            return build_model(self._model_name, self.num_classes, self._dropout, self._pretrained)

        # the start set is labeled data the user already has: fine-tuning ("replay", "all") and the
        # final training keep training on it next to the acquired regions
        start_images = {"d_s": self.roles.d_s, "d_t": self.roles.d_t}.get(self.start_set)
        self._start_images = start_images.images.to(dev) if start_images is not None else self._pool_images[:0]
        self._start_labels = start_images.labels.to(dev) if start_images is not None else self._pool_labels[:0]
        if self.start_set == "none":
            with seeded_torch(self._pretrain["seed"], torch.device("cpu")):
                model = build()
            self.start_report = {"start_set": "none"}
        else:
            start = self.roles.d_s if self.start_set == "d_s" else self.roles.d_t
            state, self.start_report = load_or_pretrain(
                self._checkpoint_description, build, start, self.roles.d_r, dev,
                self._pretrain, self._cache_dir, self.verbose,
            )
            model = build()
            model.load_state_dict(state)
        self.trainer = SegTrainer(
            model, self.num_classes, self.ignore_index, dev, self._optim, self._batch_size, freeze_bn=self._freeze_bn,
            loss_weighting=self.loss_weighting,
        )
        self._start_state = self.trainer.snapshot()
        start_eval = self.trainer.evaluate(self._reward_images, self._reward_labels)
        state_probs = self.trainer.probabilities(self._state_images)
        self._start = {
            "miou": start_eval.miou,
            "per_class_iou": start_eval.per_class_iou,
            "state_rows": self._state_rows(state_probs),
        }
        if self.mode == "test":  # the bar every policy's test mIoU must clear: what the start network scores
            self._start["test_miou"] = self.trainer.evaluate(self.roles.test.images, self.roles.test.labels).miou
        self._ready = True

    # ---- gymnasium API -----------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if not self._ready:
            self._setup()
        self.trainer.load_state_dict(self._start_state)
        self.labeled.clear()
        self._miou = self._start["miou"]
        self._per_class_iou = list(self._start["per_class_iou"])
        self._last_chosen = torch.empty(0, dtype=torch.long)
        self._steps = 0
        self._pools = self._sample_pools()
        with seeded_torch(int(self.np_random.integers(2**31 - 1)), self.device):
            obs = self._observation(state_rows=self._start["state_rows"])
        return obs, self._info({"start_test_miou": self._start["test_miou"]} if self.mode == "test" else {})

    def step(self, action):
        if not self._ready:
            raise RuntimeError("call reset() before step()")
        t_start = time.perf_counter()
        chosen = self._chosen_regions(action)
        earlier = self.labeled.labeled_ids()
        step_seed = int(self.np_random.integers(2**31 - 1))
        replay_pick = self._replay_pick(earlier.numel(), chosen.numel())

        t0 = self._clock()
        reference = None
        if self.reward == "gain_over_random":
            before = self.trainer.snapshot()
            reference = self._random_picks(step_seed)
            self._finetune(reference, earlier, replay_pick, step_seed)
            reference_miou = self.trainer.evaluate(self._reward_images, self._reward_labels).miou
            self.labeled.unmark(reference)
            self.trainer.load_state_dict(before)
        t1 = self._clock()
        self._finetune(chosen, earlier, replay_pick, step_seed)
        self._last_chosen = chosen.cpu()
        t2 = self._clock()
        result = self.trainer.evaluate(self._reward_images, self._reward_labels)
        gain = result.miou - self._miou
        extra = {}
        if reference is not None:
            extra["reference_gain"] = reference_miou - self._miou
            gain -= extra["reference_gain"]
        reward = self.reward_scale * gain
        self._miou, self._per_class_iou = result.miou, result.per_class_iou
        t3 = self._clock()
        self._steps += 1
        terminated = self.labeled.count >= self.budget
        self._pools = self._sample_pools()
        with seeded_torch(step_seed + 1, self.device):
            obs = self._observation()
        t4 = self._clock()
        if self.mode == "test" and (self.labeled.count in self.eval_budgets or terminated):
            extra.update(self._test_evaluation(step_seed + 2))
        t5 = self._clock()
        total = time.perf_counter() - t_start
        self.last_timing = {
            "reference": t1 - t0,
            "finetune": t2 - t1,
            "reward": t3 - t2,
            "features": t4 - t3,
            "test_eval": t5 - t4,
            "other": total - (t5 - t0),
            "total": total,
        }
        if self.timing_in_info:
            extra["timing"] = self.last_timing
        return obs, float(reward), bool(terminated), False, self._info(extra)

    def action_masks(self) -> np.ndarray:
        """Flat bool [K * N] of valid candidates (sb3-contrib MaskablePPO convention)."""
        return (self._pools >= 0).reshape(-1).cpu().numpy()

    def render(self):
        if self.render_mode != "rgb_array" or not self._ready:
            return None
        return render_state(self)

    # ---- internals ---------------------------------------------------------------------
    def _clock(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _chosen_regions(self, action) -> torch.Tensor:
        """Validate an action and map it to global region ids, with errors a user can act on."""
        k, n = self.num_pools, self.pool_size
        picks = np.asarray(action)
        if picks.shape != (k,):
            raise ValueError(f"action must have shape ({k},): one candidate index per pool; got shape {picks.shape}")
        if not np.issubdtype(picks.dtype, np.integer):
            if not np.all(np.isfinite(picks)) or np.any(picks != np.round(picks)):
                raise ValueError(f"action must hold integer candidate indices, got {picks.tolist()}")
            picks = picks.astype(np.int64)
        out_of_range = np.flatnonzero((picks < 0) | (picks >= n))
        if out_of_range.size:
            raise ValueError(
                f"action picks candidate(s) {picks[out_of_range].tolist()} in pool(s) {out_of_range.tolist()}; "
                f"indices must be in [0, {n})"
            )
        chosen = self._pools[torch.arange(k), torch.as_tensor(picks, dtype=torch.long)]
        masked = torch.nonzero(chosen < 0).squeeze(1).tolist()
        if masked:
            raise ValueError(
                f"action picks masked candidate(s) in pool(s) {masked} (the pool ran low); "
                "choose among entries with observation['action_mask'] == 1 (or env.action_masks())"
            )
        return chosen.to(self.device)

    def _sample_pools(self) -> torch.Tensor:
        """K disjoint pools of N unlabeled regions, [K, N] global ids (-1 = empty slot).

        As in the paper: draw random images until they hold >= K*N unlabeled regions, then draw
        K*N distinct regions among them and deal them round-robin into the pools.
        """
        k, n = self.num_pools, self.pool_size
        unlabeled = ~self.labeled.labeled
        per_image = unlabeled.sum(1).cpu().numpy()
        order = self.np_random.permutation(len(per_image))
        enough = np.searchsorted(np.cumsum(per_image[order]), k * n)
        images = torch.as_tensor(np.sort(order[: enough + 1]), device=self.device)
        img, reg = torch.nonzero(unlabeled[images], as_tuple=True)
        ids = (images[img] * self.grid.per_image + reg).cpu().numpy()
        take = min(k * n, ids.size)
        ids = ids[self.np_random.choice(ids.size, take, replace=False)]
        pools = torch.full((n, k), -1, dtype=torch.long)
        pools.view(-1)[:take] = torch.as_tensor(ids)
        return pools.T.contiguous()

    def _replay_pick(self, n_earlier: int, n_new: int) -> np.ndarray | None:
        """Which earlier regions (ids < n_earlier) and start images (the rest) the "replay" schedule retrains on."""
        if self.finetune != "replay":
            return None
        n_start = self._start_images.shape[0]
        return self.np_random.choice(n_earlier + n_start, min(n_earlier + n_start, n_new), replace=False)

    def _random_picks(self, seed: int) -> torch.Tensor:
        """One random valid candidate per pool (global ids): the reference of ``reward="gain_over_random"``."""
        rng = np.random.default_rng(seed)
        valid = (self._pools >= 0).cpu().numpy()
        picks = [rng.choice(np.flatnonzero(row)) for row in valid]
        return self._pools[torch.arange(self.num_pools), torch.as_tensor(picks, dtype=torch.long)].to(self.device)

    def _finetune(self, chosen: torch.Tensor, earlier: torch.Tensor, replay_pick: np.ndarray | None, seed: int) -> None:
        """Label ``chosen`` and fine-tune on this step's samples with the step's seed."""
        self.labeled.mark(chosen)
        samples = self._finetune_samples(chosen, earlier, replay_pick)
        schedule = None
        if self.lr_decay:  # this step's lr decays to zero: the reward is measured on a settled network
            batches = self.finetune_epochs * -(-samples[2].numel() // self._batch_size)
            schedule = warmup_cosine(self.trainer.optimizer, batches, warmup_fraction=0.0)
        with seeded_torch(seed, self.device):
            generator = torch.Generator().manual_seed(seed)
            for _ in range(self.finetune_epochs):
                self.trainer.train_epoch(*samples, self.crop_size, generator, schedule)

    def _finetune_samples(self, chosen: torch.Tensor, earlier: torch.Tensor, pick: np.ndarray | None):
        """Training samples of this step's fine-tuning, per the schedule (FINETUNE_SCHEDULES)."""
        if self.finetune == "step":
            return self._region_samples(chosen)
        n_start = self._start_images.shape[0]
        if self.finetune == "all":
            return self._with_start_images(self._region_samples(self.labeled.labeled_ids()), torch.arange(n_start, device=self.device))
        # replay: this step's regions plus as many samples drawn from earlier regions and the start set's images
        n_earlier = earlier.numel()
        from_regions = torch.as_tensor(pick[pick < n_earlier], dtype=torch.long, device=earlier.device)
        samples = self._region_samples(torch.cat([chosen, earlier[from_regions]]))
        from_start = torch.as_tensor(np.sort(pick[pick >= n_earlier] - n_earlier), dtype=torch.long, device=self.device)
        return self._with_start_images(samples, from_start)

    def _with_start_images(self, samples, start_ids: torch.Tensor):
        """Append fully labeled start-set images (whole, or cropped anywhere) to region samples."""
        if start_ids.numel() == 0:
            return samples
        images, targets, position, boxes = samples
        size = tuple(self._start_images.shape[-2:])
        extra_boxes = whole_image_boxes(start_ids.numel(), size) if self.crop_size == size else anywhere_boxes(start_ids.numel(), size)
        return (
            torch.cat([images, self._start_images[start_ids]]),
            torch.cat([targets, self._start_labels[start_ids].to(targets.dtype)]),
            torch.cat([position, torch.arange(start_ids.numel()) + images.shape[0]]),
            torch.cat([boxes, extra_boxes]),
        )

    def _region_samples(self, region_ids: torch.Tensor):
        """Training samples for regions: (images, masked targets) of their distinct images, each region's image slot and box."""
        image_ids = torch.div(region_ids, self.grid.per_image, rounding_mode="floor")
        unique, position = torch.unique(image_ids, return_inverse=True)
        targets = self.labeled.masked_labels(self._pool_labels[unique], unique, self.ignore_index)
        if self.crop_size == tuple(self._pool_images.shape[-2:]):
            # whole-image crops: one sample per image already carries all its labeled regions
            boxes = whole_image_boxes(unique.numel(), self.crop_size)
            return self._pool_images[unique], targets, torch.arange(unique.numel()), boxes
        boxes = self.grid.boxes(region_ids % self.grid.per_image)
        return self._pool_images[unique], targets, position.cpu(), boxes.cpu()

    def _state_rows(self, probs: torch.Tensor) -> np.ndarray:
        rows, _ = base_region_features(probs, self.grid)
        return rows.reshape(-1, self.layout.state_dim).cpu().numpy()

    def _observation(self, state_rows: np.ndarray | None = None) -> dict:
        """One batched forward over the state images and the distinct candidate images."""
        k, n = self.num_pools, self.pool_size
        flat = self._pools.reshape(-1).to(self.device)
        valid = flat >= 0
        ids = flat.clamp(min=0)
        image_ids = torch.div(ids, self.grid.per_image, rounding_mode="floor")
        unique, position = torch.unique(image_ids[valid], return_inverse=True)
        cand_images = self._pool_images[unique]
        n_state = 0 if state_rows is not None else self._state_images.shape[0]
        batch = cand_images if state_rows is not None else torch.cat([self._state_images, cand_images])
        probs = self.trainer.probabilities(batch)
        if state_rows is None:
            state_rows = self._state_rows(probs[:n_state])
        cand_probs = probs[n_state:]
        rows, entropy = base_region_features(cand_probs, self.grid)
        mutual_information = None
        if "bald" in self.layout.extras:
            mutual_information = self.trainer.mc_mutual_information(cand_images, self.mc_samples)
        extras = extra_region_features(self.layout.extras, cand_probs, entropy, self.grid, mutual_information)
        slot = torch.zeros_like(image_ids)
        slot[valid] = position
        region = ids % self.grid.per_image
        labeled_hist = self._pool_gt_hist[self.labeled.labeled_ids()]
        cand = candidate_rows(self.layout, rows[slot, region], extras[slot, region], valid, labeled_hist)
        labeled_pixels = labeled_hist.sum(0).float()
        fraction = labeled_pixels / labeled_pixels.sum().clamp_min(1.0)
        return {
            "state": np.array(state_rows, dtype=np.float32),  # a copy: the cached start rows must not leak
            "candidates": cand.reshape(k, n, -1).clamp(0.0, 1.0).cpu().numpy().astype(np.float32),
            "action_mask": valid.reshape(k, n).float().cpu().numpy(),
            "labeled_class_fraction": fraction.cpu().numpy().astype(np.float32),
        }

    def _test_evaluation(self, seed: int) -> dict:
        """Test-split mIoU now; with final_training, after training a copy of the network first.

        The final training continues from the current network, as the paper's does, with the
        fine-tuning optimizer (fresh state, warm-up and cosine decay over ``final_steps``, final
        weights) on what a practitioner has labeled: the start set plus the acquired regions. A fixed
        length instead of early stopping on D_R keeps it reproducible. Re-heating to the pre-training
        lr instead lost 2-4 test points against the start network (docs/al_dynamics.md).
        """
        test = self.roles.test
        if not self.final_training:
            result = self.trainer.evaluate(test.images, test.labels)
            return {"test_miou": result.miou, "test_per_class_iou": result.per_class_iou}
        snapshot, optimizer = self.trainer.snapshot(), self.trainer.optimizer
        samples = self._with_start_images(
            self._region_samples(self.labeled.labeled_ids()), torch.arange(self._start_images.shape[0], device=self.device)
        )
        self.trainer.optimizer = self._optim.build(self.trainer.model.parameters())
        self.trainer.freeze_bn = False  # as in pre-training
        with seeded_torch(seed, self.device):
            generator = torch.Generator().manual_seed(seed)
            schedule = warmup_cosine(self.trainer.optimizer, self.final_steps)
            self.trainer.train_steps(*samples, self.crop_size, generator, self.final_steps, schedule)
            self.trainer.recalibrate_batchnorm(samples[0])
        result = self.trainer.evaluate(test.images, test.labels)
        self.trainer.optimizer, self.trainer.freeze_bn = optimizer, self._freeze_bn
        self.trainer.load_state_dict(snapshot)
        return {"test_miou": result.miou, "test_per_class_iou": result.per_class_iou}

    def _info(self, extra: dict) -> dict:
        labeled_hist = self._pool_gt_hist[self.labeled.labeled_ids()].sum(0)
        return {
            "miou": self._miou,
            "per_class_iou": self._per_class_iou,
            "regions_labeled": self.labeled.count,
            "labeled_pixels_per_class": labeled_hist.cpu().tolist(),
            **extra,
        }
