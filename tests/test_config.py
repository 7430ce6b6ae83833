"""The one KEY=VALUE parser and the type check every env keyword goes through."""
from __future__ import annotations

import numpy as np
import pytest

from segal_env import SegALEnv
from segal_env.config import check_types, parse_value


@pytest.mark.parametrize(
    "text, value",
    [("False", False), ("false", False), ("TRUE", True), ("None", None), ("null", None), ("3", 3), ("1e-3", 1e-3),
     ("[45, 40]", [45, 40]), ("../data", "../data"), ('{"n_val": 100}', {"n_val": 100})],
)
def test_values_parse_as_json_or_python_literals(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


@pytest.mark.parametrize(
    "settings",
    [{"freeze_bn": False}, {"lr": 1e-3}, {"lr": 1}, {"budget": np.int64(16)}, {"region_size": [24, 32]},
     {"region_size": (24, 32)}, {"extra_features": ["entropy", "bald"]}, {"dataset_kwargs": {"n_val": 100}},
     {"eval_budgets": [8, 16]}, {"model": None}, {"scale": 0.5}],
)
def test_well_typed_env_settings_pass(settings):
    check_types(SegALEnv.__init__, settings, "env keyword")


@pytest.mark.parametrize(
    "settings, message",
    [({"freeze_bn": "False"}, "'freeze_bn' must be bool or None, got 'False' (str); on the command line write true/false"),
     ({"budget": 16.5}, "'budget' must be int or None, got 16.5 (float)"),
     ({"budget": True}, "'budget' must be int or None, got True (bool)"),
     ({"eval_budgets": [8, "16"]}, "'eval_budgets' must be list[int] or None"),
     ({"region_size": [24, 32.5]}, "'region_size' must be tuple[int, int] or list[int] or None"),
     ({"scale": "half"}, "'scale' must be float, got 'half' (str)")],
)
def test_wrongly_typed_env_settings_name_the_key_the_type_and_the_value(settings, message):
    with pytest.raises(TypeError) as error:
        check_types(SegALEnv.__init__, settings, "env keyword")
    assert message in str(error.value)
