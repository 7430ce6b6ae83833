"""The one KEY=VALUE parser and the type check every env keyword goes through."""

from __future__ import annotations

import numpy as np
import pytest

from segal_env.config import EnvConfig, check_types, parse_value


@pytest.mark.parametrize(
    "text, value",
    [
        ("False", False),
        ("false", False),
        ("TRUE", True),
        ("None", None),
        ("null", None),
        ("3", 3),
        ("1e-3", 1e-3),
        ("[45, 40]", [45, 40]),
        ("../data", "../data"),
        ('{"n_val": 100}', {"n_val": 100}),
    ],
)
def test_values_parse_as_json_or_python_literals(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


@pytest.mark.parametrize(
    "settings",
    [
        {"freeze_bn": False},
        {"lr": 1e-3},
        {"lr": 1},
        {"budget": np.int64(16)},
        {"region_size": [24, 32]},
        {"region_size": (24, 32)},
        {"extra_features": ["entropy", "bald"]},
        {"dataset_kwargs": {"n_val": 100}},
        {"eval_budgets": [8, 16]},
        {"model": None},
        {"scale": 0.5},
    ],
)
def test_well_typed_env_settings_pass(settings):
    check_types(EnvConfig, settings, "env keyword")


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            {"freeze_bn": "False"},
            "'freeze_bn' must be bool or None, got 'False' (str); on the command line write true/false",
        ),
        ({"budget": 16.5}, "'budget' must be int or None, got 16.5 (float)"),
        ({"budget": True}, "'budget' must be int or None, got True (bool)"),
        ({"eval_budgets": [8, "16"]}, "'eval_budgets' must be list[int] or None"),
        ({"region_size": [24, 32.5]}, "'region_size' must be tuple[int, int] or list[int] or None"),
        ({"scale": "half"}, "'scale' must be float, got 'half' (str)"),
    ],
)
def test_wrongly_typed_env_settings_name_the_key_the_type_and_the_value(settings, message):
    with pytest.raises(TypeError) as error:
        check_types(EnvConfig, settings, "env keyword")
    assert message in str(error.value)


def test_a_preset_resolves_without_loading_data():
    from segal_env import SegALEnv

    config = SegALEnv.default_config("camvid", "test", scale=0.5)
    assert (config.region_size, config.num_pools, config.pool_size, config.budget) == ((45, 40), 24, 10, 1920)
    assert config.crop_size == (112, 112) and config.model == "lraspp_mobilenet_v3" and config.steps_per_episode == 80
    assert SegALEnv.default_config("camvid", "train").pool_size == 20  # per-mode presets


def test_the_resolved_config_is_json_and_resolves_to_itself():
    import json

    from segal_env.config import resolve_env_config

    config = resolve_env_config(dataset="synthetic", mode="test", budget=40, eval_budgets=[16, 8, 16])
    as_json = json.loads(json.dumps(config.to_dict()))
    assert as_json["eval_budgets"] == [8, 16] and as_json["region_size"] == [24, 32]
    assert resolve_env_config(**as_json) == config


def test_unknown_env_keywords_list_the_valid_ones():
    from segal_env.config import parse_env_settings, resolve_env_config

    with pytest.raises(TypeError, match=r"unknown env keyword\(s\) \['bugdet'\]; valid: dataset, data_root"):
        resolve_env_config(bugdet=40)
    with pytest.raises(ValueError, match=r"--env-kwargs: unknown env keyword\(s\) \['bugdet'\]"):
        parse_env_settings(["bugdet=40"])


def test_dataset_names_live_in_one_place():
    from segal_env import ENV_IDS
    from segal_env.data import DATASET_NAMES
    from segal_env.presets import PRESETS

    assert set(PRESETS) == set(DATASET_NAMES) == set(ENV_IDS.values())


# ---- values out of range: an error naming the key and the fix, before anything is built ----------------
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"reward_scale": float("nan")}, "reward_scale must be a finite number > 0, got nan"),
        ({"reward_scale": float("inf")}, "reward_scale must be a finite number > 0, got inf"),
        ({"lr": -1}, "lr must be a finite number > 0, got -1"),
        ({"lr": float("nan")}, "lr must be a finite number > 0"),
        ({"pretrain_lr": 0.0}, "pretrain_lr must be a finite number > 0"),
        ({"scale": float("nan")}, "scale must be a finite number > 0"),
        ({"scale": 0}, "scale must be a finite number > 0"),
        ({"dropout": 1.0}, "dropout must be a finite number >= 0 and < 1, got 1.0"),
        ({"dropout": -0.1}, "dropout must be a finite number >= 0 and < 1"),
        ({"momentum": 1.5}, "momentum must be a finite number >= 0 and <= 1"),
        ({"weight_decay": -1e-4}, "weight_decay must be a finite number >= 0"),
        ({"max_grad_norm": float("nan")}, "max_grad_norm must be a finite number >= 0"),
        ({"mc_samples": 0, "extra_features": ["entropy"]}, "mc_samples must be a finite number >= 1, got 0"),
        ({"budget": 0}, "budget must be >= num_pools=8 (each step labels one region per pool), got budget=0"),
        ({"budget": -8}, "budget must be >= num_pools=8"),
        ({"device": "tpu"}, "device='tpu' is not a torch device; use device='auto'"),
        ({"device": "not a device"}, "device='not a device' is not a torch device"),
    ],
)
def test_out_of_range_settings_name_the_key(settings, message):
    from segal_env.config import resolve_env_config

    with pytest.raises(ValueError) as error:
        resolve_env_config(**settings)
    assert message in str(error.value)


def test_every_float_setting_has_a_range():
    import dataclasses
    import typing

    from segal_env.config import NUMBER_RANGES

    hints = typing.get_type_hints(EnvConfig)
    floats = {f.name for f in dataclasses.fields(EnvConfig) if "float" in str(hints[f.name])}
    assert floats <= set(NUMBER_RANGES), f"float settings without a range check: {floats - set(NUMBER_RANGES)}"


def test_cuda_without_a_gpu_names_device(monkeypatch):
    import torch

    from segal_env.config import check_device, resolve_env_config

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:1"):
        with pytest.raises(ValueError, match=rf"device='{device}', but torch sees no CUDA GPU.*device='auto'.*'cpu'"):
            resolve_env_config(device=device)
    check_device("cpu")
    check_device("auto")
