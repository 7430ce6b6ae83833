"""SegALEnv: region-level active learning for segmentation as a Gymnasium environment.

One step = one active-learning step of Casanova et al. (ICLR 2020): the agent picks one
candidate region in each of K pools, the ground truth labels them, the segmentation network
is fine-tuned, and the reward is the scaled mIoU gain on the reward set D_R.

This file keeps the Gymnasium API and wires the parts: settings (config.py), data roles (data/),
the start network (start_network.py), pools and actions (pools.py), what the network trains on
(finetuning.py), observations (observation.py) and pictures (render.py).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from .config import RENDER_MODES, EnvConfig, resolve_env_config
from .data import ALRoles, cached_roles
from .finetuning import FinalTraining, LabeledData, final_scores, finetune
from .layout import FeatureLayout
from .models import BUILT_IN_MODELS, SegmentationNet, build_model, check_output_contract, model_name
from .observation import Observer
from .pools import action_mask, candidate_images, check_pool_fits, chosen_regions, sample_pools
from .regions import LabeledRegions, RegionGrid
from .render import render_state
from .rewards import REWARDS
from .runtime import resolve_device, seeded_torch, tune_allocator
from .scores import EPS, TRUE_ERRORS
from .start_network import load_or_pretrain
from .trainer import OptimConfig, SegTrainer


class StepDraws(NamedTuple):
    """One step's random numbers: the fine-tuning seed, the regions labeled before it, the replay draw."""

    seed: int
    earlier: torch.Tensor
    replay: np.ndarray | None


class SegALEnv(gym.Env):
    """Pick K regions (one per pool) to label; reward = reward_scale x gain in D_R mIoU (``reward`` chooses
    after what: the step's fine-tuning, optionally minus a reference pick's gain, or the quiet final training).

    Keywords: the fields of ``EnvConfig`` (config.py); every one left at None takes the data set's
    preset for the mode (presets.py). The resolved settings are ``env.unwrapped.config``;
    ``SegALEnv.default_config("camvid", "test")`` shows a preset without building an env.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 2}

    def __init__(self, **settings: Any):
        config = resolve_env_config(**settings)
        tune_allocator()
        self.roles: ALRoles = cached_roles(
            config.dataset,
            config.data_root,
            config.scale,
            config.data_seed,
            config.dataset_kwargs,
            config.roles_file,
            config.role_sizes,
        )
        pool_set = self.roles.d_t if config.mode == "train" else self.roles.d_v
        self.num_classes = pool_set.num_classes
        self.ignore_index = pool_set.ignore_index
        self.class_names = pool_set.class_names
        try:
            self.grid = RegionGrid(pool_set.image_size, (config.region_size[0], config.region_size[1]))
        except ValueError as err:
            hint = (
                ""
                if settings.get("region_size") is not None
                else f" (the preset region size scaled by scale={config.scale}; pass region_size explicitly)"
            )
            raise ValueError(f"{err}{hint}") from None
        pool_regions = len(pool_set) * self.grid.per_image
        check_pool_fits(config.num_pools, config.pool_size, pool_regions)  # before any pre-training or allocation
        if config.budget > pool_regions:
            raise ValueError(
                f"budget {config.budget} is larger than the pool: {len(pool_set)} images x {self.grid.per_image} regions = "
                f"{pool_regions} regions; lower the budget or use larger pools/smaller regions"
            )
        height, width = pool_set.image_size
        crop = config.crop_size or (height, width)
        crop = (max(min(crop[0], height), self.grid.region_size[0]), max(min(crop[1], width), self.grid.region_size[1]))
        self.config: EnvConfig = dataclasses.replace(config, crop_size=crop)
        self.crop_size: tuple[int, int] = crop  # resolved: never None from here on
        self.render_mode = config.render_mode
        self.layout = FeatureLayout(self.num_classes, tuple(config.extra_features))
        self.device = resolve_device(config.device)
        # wall-clock times differ run to run, so they stay out of info unless asked for (Gymnasium's
        # determinism check compares two identical steps); env.unwrapped.last_timing always has them
        self.last_timing: dict[str, float] = {}

        n_state = len(self.roles.d_s) * self.grid.per_image
        k, n = config.num_pools, config.pool_size
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

    @staticmethod
    def default_config(dataset: str = "synthetic", mode: str = "train", **settings: Any) -> EnvConfig:
        """The resolved settings of a data set's preset (plus ``settings``), without loading any data."""
        return resolve_env_config(dataset=dataset, mode=mode, **settings)

    @property
    def feature_layout(self) -> FeatureLayout:
        return self.layout

    # ---- set-up ------------------------------------------------------------------------
    def _optim(self) -> OptimConfig:
        c = self.config
        return OptimConfig(c.optimizer, c.lr, c.momentum, c.weight_decay, c.max_grad_norm)

    def _start_network(self) -> tuple[SegmentationNet, dict]:
        """The starting network (pre-trained on the start set and cached, or untrained) and its report."""
        c = self.config

        def build():
            return build_model(c.model, self.num_classes, c.dropout, c.pretrained_backbone)

        architecture = {}
        if not (isinstance(c.model, str) and c.model in BUILT_IN_MODELS):
            with seeded_torch(c.checkpoint_seed, torch.device("cpu")):  # the global RNG stays as it was
                architecture = self._check_network(build())
        if c.start_set == "none":
            with seeded_torch(c.checkpoint_seed, torch.device("cpu")):
                return build(), {"start_set": "none"}
        description = {
            "dataset": c.dataset,
            "dataset_kwargs": c.dataset_kwargs or {},
            "data_seed": c.data_seed,
            "scale": c.scale,
            "roles": self.roles.to_dict(),
            "start_set": c.start_set,
            "model": model_name(c.model),
            "dropout": c.dropout,
            "pretrained_backbone": c.pretrained_backbone,
            **architecture,
        }
        pretrain = {"steps": c.pretrain_steps, "seed": c.checkpoint_seed, "lr": c.pretrain_lr}
        start = self.roles.d_s if c.start_set == "d_s" else self.roles.d_t
        state, report = load_or_pretrain(
            description, build, start, self.roles.d_r, self.device, pretrain, c.cache_dir, c.verbose
        )
        model = build()
        model.load_state_dict(state)
        return model, report

    def _check_network(self, model: SegmentationNet) -> dict[str, str]:
        """For a network of the user's (``model=`` not a built-in name): check its output contract and that
        BALD can sample it, and return a fingerprint of its parameter shapes for the start-network cache key
        (so that editing the network's code never loads another network's weights)."""
        c = self.config
        height, width = self.roles.d_r.image_size
        check_output_contract(model, self.num_classes, height, width, model_name(c.model))
        dropouts = [m for m in model.modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd)]
        if "bald" in c.extra_features and not dropouts:
            raise ValueError(
                f"model '{model_name(c.model)}' has no dropout layer, so the 'bald' feature (MC dropout) is undefined: "
                "put a torch.nn.Dropout before its classifier, or leave BALD out with "
                f"extra_features={[e for e in c.extra_features if e != 'bald']}"
            )
        shapes = ";".join(f"{name}:{tuple(p.shape)}" for name, p in model.state_dict().items())
        return {"architecture": hashlib.sha256(shapes.encode()).hexdigest()[:16]}

    def _setup(self) -> None:
        c, dev = self.config, self.device
        pool_set = self.roles.d_t if c.mode == "train" else self.roles.d_v
        pool_images, pool_labels = pool_set.images.to(dev), pool_set.labels.to(dev)
        state_images = self.roles.d_s.images.to(dev)
        self._reward_images, self._reward_labels = self.roles.d_r.images.to(dev), self.roles.d_r.labels.to(dev)
        self.labeled = LabeledRegions(self.grid, len(pool_set), dev)
        # the start set is labeled data the user already has: fine-tuning ("replay", "all") and the
        # final training keep training on it next to the acquired regions
        start = {"d_s": self.roles.d_s, "d_t": self.roles.d_t}.get(c.start_set)
        start_images = start.images.to(dev) if start is not None else pool_images[:0]
        start_labels = start.labels.to(dev) if start is not None else pool_labels[:0]
        self.data = LabeledData(
            self.grid,
            self.labeled,
            pool_images,
            pool_labels,
            start_images,
            start_labels,
            self.crop_size,
            self.ignore_index,
        )
        pool_histograms = self.grid.class_histograms(pool_labels, self.num_classes).view(-1, self.num_classes)
        self.observer = Observer(self.layout, self.grid, pool_images, pool_histograms, state_images, c.mc_samples)

        model, self.start_report = self._start_network()
        self.trainer = SegTrainer(
            model,
            self.num_classes,
            self.ignore_index,
            dev,
            self._optim(),
            c.batch_size,
            freeze_bn=c.freeze_bn,
            loss_weighting=c.loss_weighting,
        )
        self._start_state = self.trainer.snapshot()
        start_eval = self.trainer.evaluate(self._reward_images, self._reward_labels)
        self._start: dict[str, Any] = {
            "miou": start_eval.miou,
            "per_class_iou": start_eval.per_class_iou,
            "state_rows": self.observer.state_rows(self.trainer.probabilities(state_images)),
        }
        if REWARDS[c.reward].after_final_training:  # the labels of every episode's start: scored once per env
            self._start["final_miou"] = self._final_scores([(self._reward_images, self._reward_labels)], 0)[0][0]
        if c.mode == "test":  # the bar every policy's test mIoU must clear: what the start network scores
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
        self._final_miou = self._start.get("final_miou", 0.0)
        self._per_class_iou = list(self._start["per_class_iou"])
        self.last_chosen = torch.empty(0, dtype=torch.long)
        self.pools = self._sample_pools()
        with seeded_torch(int(self.np_random.integers(2**31 - 1)), self.device):
            obs = self._observe(state_rows=self._start["state_rows"])
        return obs, self._info({"start_test_miou": self._start["test_miou"]} if self.config.mode == "test" else {})

    def step(self, action):
        if not self._ready:
            raise RuntimeError("call reset() before step()")
        c = self.config
        t_start = time.perf_counter()
        chosen = chosen_regions(self.pools, action).to(self.device)
        draws = self._draw_step()
        t0 = self._clock()
        extra: dict[str, Any] = {}
        reference = REWARDS[c.reward].reference
        if reference is not None:  # the same step with the reference's picks, from the same network and draws
            picks = reference(self.pools, self._obs["candidates"], self.layout, draws.seed).to(self.device)
            extra["reference_gain"] = self._try(picks, draws) - self._miou
        t1 = self._clock()
        self._label_and_finetune(chosen, draws)
        self.last_chosen = chosen.cpu()
        t2 = self._clock()
        result = self.trainer.evaluate(self._reward_images, self._reward_labels)
        if REWARDS[c.reward].after_final_training:
            final_miou = self.reward_set_final_score(draws.seed)
            reward = c.reward_scale * (final_miou - self._final_miou)
            self._final_miou = extra["reward_final_miou"] = final_miou
        else:
            reward = c.reward_scale * (result.miou - self._miou - extra.get("reference_gain", 0.0))
        self._miou, self._per_class_iou = result.miou, result.per_class_iou
        t3 = self._clock()
        terminated = self.labeled.count >= c.budget
        self.pools = self._sample_pools()
        with seeded_torch(draws.seed + 1, self.device):
            obs = self._observe()
        t4 = self._clock()
        if c.mode == "test" and (self.labeled.count in c.eval_budgets or terminated):
            extra.update(self._test_evaluation(draws.seed + 2))
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
        if c.timing_in_info:
            extra["timing"] = self.last_timing
        return obs, float(reward), bool(terminated), False, self._info(extra)

    def lookahead(self, actions: Sequence[np.ndarray], repeats: int = 1) -> list[float]:
        """PRIVILEGED, reads the true labels: the D_R mIoU each action would reach if it were the next step.

        Every action is fine-tuned from the current network with the next step's own seed and replay draws
        (common random numbers), then undone: the env's state and generator are unchanged, and stepping the
        best action afterwards reproduces its look-ahead value exactly (on CPU). With ``repeats`` > 1 each
        value is the mean over that many fine-tuning seeds (the step's own first, the same for every action),
        which averages out the luck of one fine-tuning. Used by the oracle policy (agents.oracle), which
        bounds what any selector could gain; never by a policy that could meet unlabelled data.
        """
        if not self._ready:
            raise RuntimeError("call reset() before lookahead()")
        if not isinstance(repeats, int) or repeats < 1:
            raise ValueError(f"lookahead repeats must be an int >= 1 (fine-tuning seeds per action), got {repeats!r}")
        state = copy.deepcopy(self.np_random.bit_generator.state)
        draws = self._draw_step()
        self.np_random.bit_generator.state = state
        seeds = [draws.seed] + [int(s) for s in np.random.default_rng(draws.seed).integers(2**31 - 1, size=repeats - 1)]
        values = []
        for action in actions:
            chosen = chosen_regions(self.pools, action).to(self.device)
            values.append(float(np.mean([self._try(chosen, draws._replace(seed=seed)) for seed in seeds])))
        return values

    def candidate_errors(self, kind: str = "error", balanced: bool = False) -> np.ndarray:
        """PRIVILEGED, reads the true labels: [K, N] how wrong the current network is on every candidate region.

        ``kind``: "error", the share of the region's labelled pixels it misclassifies, or "loss", their mean
        cross-entropy (segal_env.scores.TRUE_ERRORS). ``balanced`` weights each pixel by 1 / (C x its true
        class's share of the pool's pixels), so errors on rare classes, which weigh as much in mIoU as the
        common ones, count more. Empty pool slots are NaN. Reads only: no random numbers are drawn and the
        network is not changed. Used by the error oracles (agents.oracle), never by a deployable policy.
        """
        if not self._ready:
            raise RuntimeError("call reset() before candidate_errors()")
        if kind not in TRUE_ERRORS:
            raise ValueError(f"unknown error kind {kind!r}; valid: {', '.join(TRUE_ERRORS)}")
        where = candidate_images(self.pools, self.grid.per_image, self.device)
        labels = self.data.pool_labels[where.images].long()
        counted = labels < self.num_classes
        known = torch.where(counted, labels, torch.zeros_like(labels))
        pixel = TRUE_ERRORS[kind](self.trainer.probabilities(self.data.pool_images[where.images]), known)
        weight = counted.float()
        if balanced:
            pixels_per_class = self.observer.pool_class_histograms.sum(0).float()
            share = pixels_per_class / pixels_per_class.sum()
            weight = weight * (1.0 / (self.num_classes * share.clamp_min(EPS)))[known]
        region_sum = self.grid.split(pixel * weight).flatten(-2).sum(-1)
        region_pixels = self.grid.split(counted.float()).flatten(-2).sum(-1)
        per_region = region_sum / region_pixels.clamp_min(1.0)
        errors = torch.where(where.valid, per_region[where.slot, where.region], float("nan"))
        return errors.reshape(self.pools.shape).cpu().numpy()

    def action_masks(self) -> np.ndarray:
        """Flat bool [K * N] of valid candidates (sb3-contrib MaskablePPO convention)."""
        if not self._ready:
            raise RuntimeError("call reset() before action_masks(): the candidate pools are drawn at reset")
        return action_mask(self.pools).reshape(-1)

    def render(self):
        if self.render_mode != "rgb_array" or not self._ready:
            return None
        state_image = self.observer.state_images[:1]
        return render_state(
            self.grid,
            self.num_classes,
            self.data.pool_images,
            self.pools,
            self.labeled.labeled,
            self.last_chosen,
            state_image,
            self.trainer.probabilities(state_image),
            self.roles.d_s.labels[0],
        )

    # ---- internals ---------------------------------------------------------------------
    def _clock(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _sample_pools(self) -> torch.Tensor:
        return sample_pools(~self.labeled.labeled, self.config.num_pools, self.config.pool_size, self.np_random)

    def _observe(self, state_rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        self._obs = self.observer.observe(self.trainer, self.pools, self.labeled.labeled_ids(), state_rows)
        return self._obs

    def _draw_step(self) -> StepDraws:
        """The step's random numbers, all from ``np_random``: its seed and the replay schedule's draw."""
        earlier = self.labeled.labeled_ids()
        seed = int(self.np_random.integers(2**31 - 1))
        replay = self.data.replay_pick(self.config.finetune, self.np_random, earlier.numel(), self.config.num_pools)
        return StepDraws(seed, earlier, replay)

    def _label_and_finetune(self, chosen: torch.Tensor, draws: StepDraws) -> None:
        """Label ``chosen`` and fine-tune on this step's samples with the step's draws."""
        c = self.config
        self.labeled.mark(chosen)
        samples = self.data.step_samples(c.finetune, chosen, draws.earlier, draws.replay)
        finetune(self.trainer, samples, c.finetune_epochs, self.crop_size, c.lr_decay, draws.seed)

    def _try(self, chosen: torch.Tensor, draws: StepDraws) -> float:
        """D_R mIoU after labelling and fine-tuning ``chosen`` with ``draws``; the labels and network are restored."""
        before = self.trainer.snapshot()
        self._label_and_finetune(chosen, draws)
        miou = self.trainer.evaluate(self._reward_images, self._reward_labels).miou
        self.labeled.unmark(chosen)
        self.trainer.load_state_dict(before)
        return miou

    def final_spec(self) -> FinalTraining:
        """How this env's test mode scores a labeled set (the ``final_*`` settings)."""
        c = self.config
        return FinalTraining(
            c.final_steps, c.final_start, c.final_average, c.final_repeats, c.final_seed, c.final_start_share
        )

    def _test_evaluation(self, seed: int) -> dict:
        """Test-split mIoU now; with final_training, after training the network further first (finetuning.final_training).

        ``reward_set_final_miou`` is the reward set's mIoU of the same network the test score comes from, so a
        chooser that may only read D_R judges exactly what the benchmark reports (the current network's D_R
        mIoU without final training)."""
        test = self.roles.test
        if not self.config.final_training:
            result = self.trainer.evaluate(test.images, test.labels)
            return {
                "test_miou": result.miou,
                "test_per_class_iou": result.per_class_iou,
                "reward_set_final_miou": self._miou,
            }
        (miou, per_class), (reward_set_miou, _) = self._final_scores(
            [(test.images, test.labels), (self._reward_images, self._reward_labels)], seed
        )
        return {"test_miou": miou, "test_per_class_iou": per_class, "reward_set_final_miou": reward_set_miou}

    def _final_scores(
        self, eval_sets: Sequence[tuple[torch.Tensor, torch.Tensor]], seed: int
    ) -> list[tuple[float, list[float]]]:
        """mIoU and per-class IoU on each (images, labels) after the final training (``final_spec``) on the labels so far."""
        spec = self.final_spec()
        return final_scores(
            self.trainer,
            self.data.everything(),
            eval_sets,
            self._optim(),
            spec,
            self.crop_size,
            spec.seeds(seed, self.config.checkpoint_seed),
            self._start_state,
            start_samples=int(self.data.start_images.shape[0]),
        )

    def reward_set_final_score(self, seed: int) -> float:
        """D_R mIoU after the test mode's final training (``final_*`` settings, seeded by ``seed``) on the labels
        acquired so far; the network is restored. What the labels are worth to a final training, scored on the
        reward set, never the test split: a rule can be chosen by the measure the benchmark reports
        (``agents.rule_choice.RuleSelection(score="final")``). A test-mode step reports the same for the network
        it scores on test (``info["reward_set_final_miou"]``)."""
        if not self._ready:
            raise RuntimeError("call reset() before reward_set_final_score()")
        return self._final_scores([(self._reward_images, self._reward_labels)], seed)[0][0]

    def _info(self, extra: dict) -> dict:
        labeled_hist = self.observer.pool_class_histograms[self.labeled.labeled_ids()].sum(0)
        return {
            "miou": self._miou,
            "per_class_iou": self._per_class_iou,
            "regions_labeled": self.labeled.count,
            "labeled_pixels_per_class": labeled_hist.cpu().tolist(),
            **extra,
        }
