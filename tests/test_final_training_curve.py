"""benchmarks/final_training_curve.py: whole random pool images scored as the env's quiet test mode scores a set."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest
import torch

import segal_env  # noqa: F401

from conftest import as_cli, benchmark_script


@pytest.fixture(scope="module")
def curve():
    with benchmark_script("final_training_curve") as module:
        yield module


def test_each_point_is_the_quiet_test_score_of_its_whole_images(curve, tiny_kwargs, tmp_path, one_torch_thread):
    out = curve.main(["--env-kwargs", *as_cli(tiny_kwargs), "--images", "0", "2", "--out", str(tmp_path / "c")])
    quiet = {"final_training": True, "final_start": "start", "final_seed": "fixed", "mode": "test"}
    env = gym.make("SegAL-Synthetic-v0", **{**tiny_kwargs, **quiet})
    env.reset(seed=0)
    u = env.unwrapped
    assert out["rows"][0]["test"] == [pytest.approx(100 * u._test_evaluation(seed=9)["test_miou"], abs=1e-9)]
    chosen = curve.np.random.default_rng(0).choice(curve.pool_size(env), size=2, replace=False)
    per_image = u.grid.per_image
    u.labeled.mark(torch.as_tensor([i * per_image + r for i in chosen for r in range(per_image)]))
    scored = u._test_evaluation(seed=9)
    assert out["rows"][1]["regions"] == 2 * per_image
    assert out["rows"][1]["test"] == [pytest.approx(100 * scored["test_miou"], abs=1e-9)]
    assert out["rows"][1]["reward_set"] == [pytest.approx(100 * scored["reward_set_final_miou"], abs=1e-9)]
    assert json.loads((tmp_path / "c.json").read_text())["rows"] == out["rows"]


def test_more_images_than_the_pool_holds_is_refused_before_training(curve, tiny_kwargs, tmp_path, capsys):
    with pytest.raises(SystemExit):
        curve.main(["--env-kwargs", *as_cli(tiny_kwargs), "--images", "0", "999", "--out", str(tmp_path / "c")])
    assert "the pool holds" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()
