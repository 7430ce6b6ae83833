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
