"""The environment's settings: one KEY=VALUE parser, one type check, and the resolved ``EnvConfig``.

``EnvConfig`` holds every env keyword. ``resolve_env_config`` fills what the user left at None from the
data set's presets (presets.py), scales sizes, and validates everything that does not need the data;
the env adds the checks that do (region tiling, budget against the pool) and exposes the result as
``env.unwrapped.config``, which train.py, the benchmark records and render read. Nothing else
describes the settings again.

Why a type check: a command line gives strings, and ``bool("False")`` is True, so a mistyped setting
used to change the run silently (``freeze_bn=False`` left BatchNorm frozen). Every env keyword is
checked against its annotation in ``EnvConfig``, and the error names the key, the type it needs and
what was given.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from .data import DATASET_NAMES
from .finetuning import FINAL_SEEDS, FINAL_STARTS, FINETUNE_SCHEDULES
from .layout import FeatureLayout
from .models import model_factory, model_name
from .presets import preset_value
from .rewards import REWARDS
from .trainer import LOSS_WEIGHTINGS

DEFAULT_EXTRAS = ("entropy", "margin", "confidence", "bald")
MODES = {"train": "pool D_T, for training agents", "test": "pool D_V, for benchmarking policies"}
START_SETS = ("d_s", "d_t", "none")
OPTIMIZERS = ("sgd", "adam")
RENDER_MODES = ("rgb_array",)

_WORDS = {"true": True, "false": False, "none": None, "null": None}


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (numbers, lists, dicts, true/false/null), Python's
    True/False/None in any case, else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return _WORDS.get(text.strip().lower(), text)


def parse_key_values(items: list[str] | None, option: str) -> dict[str, Any]:
    """``["a=1", "b=[2,3]", "c=text", "d=False"]`` -> ``{"a": 1, "b": [2, 3], "c": "text", "d": False}``.

    Raises ValueError naming ``option`` for an item that is not KEY=VALUE or a key given twice.
    """
    parsed: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not key.isidentifier():
            raise ValueError(f"{option}: expected KEY=VALUE with KEY a Python identifier, got {item!r}")
        if key in parsed:
            raise ValueError(f"{option}: {key!r} given twice")
        parsed[key] = parse_value(raw)
    return parsed


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the annotation ``hint`` (JSON-style: an int is a float, a bool is not a number)."""
    if hint is Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if hint is bool:
        return isinstance(value, (bool, np.bool_))
    if hint is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if hint is float:
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if hint is str:
        return isinstance(value, str)
    if origin is list or hint is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value) if args else isinstance(value, list)
    if origin is tuple or hint is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return not args or (len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args)))
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if origin is collections.abc.Callable:
        return callable(value)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _describe(hint: Any) -> str:
    if hint is None or hint is type(None):
        return "None"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if origin is not None:
        args = ", ".join("..." if a is Ellipsis else _describe(a) for a in typing.get_args(hint))
        return f"{origin.__name__}[{args}]" if args else origin.__name__
    return getattr(hint, "__name__", str(hint))


def check_types(function: Callable, settings: dict[str, Any], what: str = "setting") -> None:
    """Raise TypeError for the first value in ``settings`` that does not fit ``function``'s annotation
    (``function`` may be a class: its field annotations count)."""
    hints = typing.get_type_hints(function)
    for key, value in settings.items():
        if key in hints and not _matches(value, hints[key]):
            raise TypeError(
                f"{what} '{key}' must be {_describe(hints[key])}, got {value!r} ({type(value).__name__})"
                + (
                    "; on the command line write true/false, not a quoted string"
                    if hints[key] in (bool, bool | None) and isinstance(value, str)
                    else ""
                )
            )


@dataclass(frozen=True)
class EnvConfig:
    """Every setting of a SegAL env. None means "the data set's preset for the mode" (presets.py); sizes
    are (height, width) at the working resolution, after ``scale``. Resolved by ``resolve_env_config``.
    """

    dataset: str = "synthetic"
    data_root: str | None = None
    dataset_kwargs: dict | None = None
    roles_file: str | None = None
    role_sizes: dict | None = None
    data_seed: int = 0
    scale: float = 1.0
    mode: str = "train"
    region_size: tuple[int, int] | list[int] | None = None
    num_pools: int | None = None
    pool_size: int | None = None
    budget: int | None = None
    reward_scale: float = 100.0
    reward: str = "gain"
    model: str | Callable[..., Any] | None = None  # a name in models.MODELS, "package.module:function" or a factory
    dropout: float = 0.5
    pretrained_backbone: bool = False
    finetune: str | None = None
    finetune_epochs: int | None = None
    optimizer: str | None = None
    lr: float | None = None
    momentum: float = 0.95
    weight_decay: float = 1e-4
    max_grad_norm: float = 4.0
    batch_size: int | None = None
    freeze_bn: bool | None = None
    loss_weighting: str | None = None
    lr_decay: bool | None = None
    crop_size: tuple[int, int] | list[int] | None = None
    extra_features: tuple[str, ...] | list[str] = DEFAULT_EXTRAS
    mc_samples: int = 20
    start_set: str | None = None
    pretrain_steps: int | None = None
    pretrain_lr: float | None = None
    checkpoint_seed: int = 0
    eval_budgets: list[int] | None = None
    final_training: bool = False
    final_steps: int | None = None
    final_start: str | None = None
    final_average: float | None = None
    final_repeats: int | None = None
    final_seed: str | None = None
    final_start_share: float | None = None
    cache_dir: str | None = None
    device: str = "auto"
    render_mode: str | None = None
    timing_in_info: bool = False
    verbose: bool = False

    @property
    def steps_per_episode(self) -> int:
        return -(-self.budget // self.num_pools)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (tuples as lists), e.g. for config.json and benchmark records."""
        return json.loads(
            json.dumps(dataclasses.asdict(self), default=model_name)
        )  # a model factory by its import path


ENV_KEYWORDS = tuple(field.name for field in dataclasses.fields(EnvConfig))
# filled from presets.py when left at None; the sizes are then multiplied by ``scale``
_FROM_PRESETS = (
    "model",
    "finetune",
    "finetune_epochs",
    "optimizer",
    "lr",
    "batch_size",
    "freeze_bn",
    "loss_weighting",
    "lr_decay",
    "start_set",
    "pretrain_steps",
    "pretrain_lr",
    "final_steps",
    "final_start",
    "final_average",
    "final_repeats",
    "final_seed",
    "num_pools",
    "pool_size",
    "budget",
)
_SCALED_PRESETS = ("region_size", "crop_size")


# the allowed range of every number setting: (low, high, low inclusive, high inclusive); None = unbounded.
# Every float must also be finite: reward_scale=nan would make every reward NaN without a word.
NUMBER_RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "scale": (0.0, None, False, False),
    "reward_scale": (0.0, None, False, False),
    "dropout": (0.0, 1.0, True, False),
    "lr": (0.0, None, False, False),
    "momentum": (0.0, 1.0, True, True),
    "weight_decay": (0.0, None, True, False),
    "max_grad_norm": (0.0, None, True, False),  # 0: no clipping
    "pretrain_lr": (0.0, None, False, False),
    "mc_samples": (1, None, True, False),
    "final_average": (0.0, 1.0, True, False),  # the fraction of the final training's steps whose weights are averaged
    "final_repeats": (1, None, True, False),
    # the share of every final-training batch taken by the start set's images; None: no fixed share
    "final_start_share": (0.0, 1.0, True, True),
}


def _range_text(low: float | None, high: float | None, low_in: bool, high_in: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>=' if low_in else '>'} {low:g}")
    if high is not None:
        parts.append(f"{'<=' if high_in else '<'} {high:g}")
    return " and ".join(parts) or "finite"


def check_numbers(config: EnvConfig) -> None:
    """Raise ValueError for a number setting that is not finite or out of its range (``NUMBER_RANGES``),
    naming the key, the range and the value."""
    for key, (low, high, low_in, high_in) in NUMBER_RANGES.items():
        value = getattr(config, key)
        if value is None:
            continue
        bad = not math.isfinite(value)
        bad = bad or (low is not None and (value < low if low_in else value <= low))
        bad = bad or (high is not None and (value > high if high_in else value >= high))
        if bad:
            raise ValueError(f"{key} must be a finite number {_range_text(low, high, low_in, high_in)}, got {value!r}")


def check_device(device: str) -> None:
    """Raise ValueError naming ``device`` when it is not a torch device this machine has."""
    text = str(device)
    if text == "auto":
        return
    fix = "use device='auto' (CUDA when available, else the CPU) or device='cpu'"
    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError):
        raise ValueError(f"device={text!r} is not a torch device; {fix}") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={text!r}, but torch sees no CUDA GPU on this machine; {fix}")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"device={text!r}, but this machine has {torch.cuda.device_count()} CUDA GPU(s); {fix}")
    elif parsed.type not in ("cpu", "mps"):
        raise ValueError(f"device={text!r}: segal runs on the CPU or CUDA GPUs; {fix}")


def _choice(key: str, value: Any, choices) -> None:
    if value not in choices:
        raise ValueError(f"{key} must be one of {sorted(choices)}, got {value!r}")


def parse_env_settings(items: list[str] | None, option: str = "--env-kwargs") -> dict[str, Any]:
    """Command-line env keywords: KEY=VALUE items parsed, with unknown keys and wrong types rejected.

    Raises ValueError naming ``option``, the key, the expected type and what was given. Values are checked,
    not resolved: presets are filled in when the env is built.
    """
    settings = parse_key_values(items, option)
    unknown = sorted(set(settings) - set(ENV_KEYWORDS))
    if unknown:
        raise ValueError(f"{option}: unknown env keyword(s) {unknown}; valid: {', '.join(ENV_KEYWORDS)}")
    try:
        check_types(EnvConfig, settings, "env keyword")
    except TypeError as error:
        raise ValueError(f"{option}: {error}") from None
    return settings


def resolve_env_config(**settings: Any) -> EnvConfig:
    """User keywords -> a validated ``EnvConfig`` with every preset filled in.

    Raises TypeError for an unknown keyword or a value of the wrong type (naming the key, the type and
    the value), ValueError for a value out of range (naming the fix).
    """
    unknown = sorted(set(settings) - set(ENV_KEYWORDS))
    if unknown:
        raise TypeError(f"unknown env keyword(s) {unknown}; valid: {', '.join(ENV_KEYWORDS)}")
    check_types(EnvConfig, settings, "env keyword")
    given = EnvConfig(**settings)
    check_numbers(given)  # before any arithmetic: a NaN scale would fail in the preset scaling, unnamed
    check_device(given.device)
    if given.dataset not in DATASET_NAMES:
        raise ValueError(f"unknown dataset '{given.dataset}'; choose from {sorted(DATASET_NAMES)}")
    if given.mode not in MODES:
        raise ValueError(
            f"mode must be 'train' (pool D_T, for training agents) or 'test' (pool D_V), got '{given.mode}'"
        )
    filled: dict[str, Any] = {}
    for key in _FROM_PRESETS:
        value = getattr(given, key)
        filled[key] = preset_value(given.dataset, key, given.mode) if value is None else value
    for key in _SCALED_PRESETS:
        value = getattr(given, key)
        if value is None and preset_value(given.dataset, key, given.mode) is not None:
            value = tuple(int(round(v * given.scale)) for v in preset_value(given.dataset, key, given.mode))
        filled[key] = None if value is None else tuple(int(v) for v in value)
    if filled["region_size"] is None:
        raise ValueError(f"dataset '{given.dataset}' has no default region size: pass region_size=(height, width)")
    for key in (
        "finetune_epochs",
        "batch_size",
        "pretrain_steps",
        "final_steps",
        "final_repeats",
        "num_pools",
        "pool_size",
        "budget",
    ):
        filled[key] = int(filled[key])
    for key in ("lr", "pretrain_lr", "final_average"):
        filled[key] = float(filled[key])
    filled["extra_features"] = tuple(given.extra_features)
    filled["eval_budgets"] = sorted({int(b) for b in given.eval_budgets or []})
    config = dataclasses.replace(given, scale=float(given.scale), reward_scale=float(given.reward_scale), **filled)

    _choice("finetune", config.finetune, FINETUNE_SCHEDULES)
    _choice("reward", config.reward, REWARDS)
    needs = REWARDS[config.reward].needs_feature
    if needs and needs not in config.extra_features:
        raise ValueError(f"reward={config.reward!r} reads the '{needs}' feature: add it to extra_features")
    if REWARDS[config.reward].after_final_training and (config.final_start, config.final_seed) != ("start", "fixed"):
        raise ValueError(
            f"reward={config.reward!r} needs a final training that is a function of the labels, got "
            f"final_start={config.final_start!r} final_seed={config.final_seed!r}: set final_start=start final_seed=fixed"
        )
    _choice("optimizer", config.optimizer, OPTIMIZERS)
    _choice("loss_weighting", config.loss_weighting, LOSS_WEIGHTINGS)
    _choice("start_set", config.start_set, START_SETS)
    _choice("final_start", config.final_start, FINAL_STARTS)
    _choice("final_seed", config.final_seed, FINAL_SEEDS)
    model_factory(config.model)  # an unknown name or an import path that does not import raises here, naming the fix
    if config.render_mode is not None:
        _choice("render_mode", config.render_mode, RENDER_MODES)
    FeatureLayout(1, tuple(config.extra_features))  # unknown or repeated extras raise here, naming the valid ones
    if "bald" in config.extra_features and config.mc_samples < 2:
        raise ValueError("the 'bald' feature needs mc_samples >= 2; drop it from extra_features or raise mc_samples")
    if config.batch_size < 1 or config.finetune_epochs < 0:
        raise ValueError(
            f"batch_size must be >= 1 and finetune_epochs >= 0, got {config.batch_size} and {config.finetune_epochs}"
        )
    if config.pretrain_steps < 1 or config.final_steps < 1:
        raise ValueError(
            f"pretrain_steps and final_steps must be >= 1, got {config.pretrain_steps} and {config.final_steps}"
        )
    if config.num_pools < 1 or config.pool_size < 1:
        raise ValueError(f"num_pools and pool_size must be >= 1, got {config.num_pools} and {config.pool_size}")
    if config.budget < config.num_pools:
        raise ValueError(
            f"budget must be >= num_pools={config.num_pools} (each step labels one region per pool), got "
            f"budget={config.budget}; e.g. budget={config.num_pools}"
        )
    if config.budget % config.num_pools:
        raise ValueError(
            f"budget {config.budget} is not a multiple of num_pools={config.num_pools} (each step labels one region "
            f"per pool); use e.g. budget={config.budget // config.num_pools * config.num_pools or config.num_pools}"
        )
    bad = [b for b in config.eval_budgets if b % config.num_pools or b <= 0 or b > config.budget]
    if bad:
        raise ValueError(
            f"eval_budgets {bad} must be positive multiples of num_pools={config.num_pools} and <= budget={config.budget}"
        )
    return config
