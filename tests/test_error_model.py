"""The learned error estimator (agents.ErrorRegression, segal-fit-error-model): it fits what it is given, reads only
the observation, refuses an observation it was not fitted on, and never reads a test pool's labels."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

import segal_env  # noqa: F401
from agents import ErrorModel, ErrorRegression, feature_layout, fit_error_regression, make_agent
from agents.error_regression import env_settings, fit_ridge
from experiments import error_model
from experiments.episodes import play_episode
from experiments.requests.inputs import check_error_model
from segal_env.layout import FeatureLayout

from conftest import as_cli


@pytest.fixture
def tiny(tiny_kwargs, one_torch_thread):
    return {**tiny_kwargs, "device": "cpu"}


def test_ridge_recovers_a_linear_error():
    rng = np.random.default_rng(0)
    rows = rng.random((300, 5))
    target = rows @ np.array([0.5, -0.2, 0.0, 0.1, 0.3]) + 0.05
    model = fit_ridge(rows, target, ridge=1e-6)
    assert np.allclose(model.predict(rows), target, atol=1e-5)
    assert model.info["r2_fit"] == pytest.approx(1.0, abs=1e-8)
    batched = rows.reshape(3, 10, 10, 5)  # any leading axes, as a VecEnv batch of [K, N, D]
    assert np.allclose(model.predict(batched), target.reshape(3, 10, 10), atol=1e-5)
    with pytest.raises(ValueError, match="ridge must be > 0"):
        fit_ridge(rows, target, ridge=0.0)
    with pytest.raises(ValueError, match=r"rows \[M, D\] and targets \[M\]"):
        fit_ridge(rows, target[:-1])


def test_a_saved_model_loads_back_identical_and_a_foreign_file_is_named(tmp_path):
    rng = np.random.default_rng(1)
    model = fit_ridge(rng.random((50, 4)), rng.random(50), info={"extras": ["margin"], "num_classes": 2})
    path = model.save(tmp_path / "model.npz")
    loaded = ErrorModel.load(path)
    for name in ("mean", "scale", "weights"):
        assert np.array_equal(getattr(loaded, name), getattr(model, name))
    assert loaded.intercept == model.intercept and loaded.info == model.info
    with pytest.raises(ValueError, match=r"saved as \.npz"):
        model.save(tmp_path / "model.zip")
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"cannot read the error model .*broken\.npz"):
        ErrorModel.load(broken)


def test_its_pick_is_the_largest_predicted_error_among_valid_candidates():
    layout = FeatureLayout(2, ("margin",))
    width = layout.candidate_dim
    weights = np.zeros(width)
    weights[layout.extra("margin")] = 1.0  # predicted error = the margin column
    model = ErrorModel(np.zeros(width), np.ones(width), weights, 0.0, {"num_classes": 2, "extras": ["margin"]})
    policy = ErrorRegression(layout, model)
    candidates = np.zeros((2, 3, width), dtype=np.float32)
    candidates[..., layout.extra("margin")] = [[0.1, 0.9, 0.5], [0.7, 0.2, 0.3]]
    mask = np.array([[1, 1, 1], [0, 1, 1]], dtype=np.float32)  # pool 1's best slot is empty
    action, _ = policy.predict({"candidates": candidates, "action_mask": mask})
    assert action.tolist() == [1, 2]


def test_a_rarity_weighted_model_prefers_errors_on_under_labelled_classes():
    layout = FeatureLayout(2, ("margin",))
    width = layout.candidate_dim
    weights = np.zeros(width)
    weights[layout.extra("margin")] = 1.0
    info = {"num_classes": 2, "extras": ["margin"]}
    plain = ErrorRegression(layout, ErrorModel(np.zeros(width), np.ones(width), weights, 0.0, info))
    weighted = ErrorRegression(
        layout, ErrorModel(np.zeros(width), np.ones(width), weights, 0.0, {**info, "rarity_weighted": True})
    )
    candidates = np.zeros((2, 2, width), dtype=np.float32)
    candidates[..., layout.extra("margin")] = [[0.5, 0.4], [-0.2, -0.5]]  # pool 1: no error predicted anywhere
    candidates[:, :, layout.class_hist] = [[1.0, 0.0], [0.0, 1.0]]  # slot 0 holds class 0, slot 1 class 1
    obs = {
        "candidates": candidates,
        "action_mask": np.ones((2, 2), np.float32),
        "labeled_class_fraction": np.array([0.95, 0.05], np.float32),  # class 1 is the rare one
    }
    assert plain.predict(obs)[0].tolist() == [0, 0]  # the largest predicted error
    # pool 0: 0.4 x 1/(0.05 + 0.05) beats 0.5 x 1/(0.95 + 0.05); pool 1: the floor leaves the rarity to decide,
    # where negative errors times the weights would have put the common class first
    assert weighted.predict(obs)[0].tolist() == [1, 1]


def test_a_model_fitted_on_another_observation_is_refused(tmp_path):
    fitted = FeatureLayout(2, ("margin",))
    width = fitted.candidate_dim
    model = ErrorModel(np.zeros(width), np.ones(width), np.ones(width), 0.0, {"num_classes": 2, "extras": ["margin"]})
    path = model.save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match=r"extras \['margin'\] in the model, \['margin', 'bald'\] in this env"):
        ErrorRegression(FeatureLayout(2, ("margin", "bald")), path)
    with pytest.raises(ValueError, match="num_classes 2 in the model, 3 in this env"):
        ErrorRegression(FeatureLayout(3, ("margin",)), path)
    named = ErrorModel(model.mean, model.scale, model.weights, 0.0, {**model.info, "class_names": ["road", "pole"]})
    with pytest.raises(ValueError, match=r"class_names \['road', 'pole'\] in the model, \['pole', 'road'\]"):
        ErrorRegression(fitted, named, class_names=["pole", "road"])  # same count, other order: other columns
    ErrorRegression(fitted, named, class_names=["road", "pole"])
    # segal-request checks it before training any network, in its own options' words
    with pytest.raises(ValueError, match="--extra-features and the class names"):
        check_error_model(str(path), FeatureLayout(3, ("margin",)))
    with pytest.raises(ValueError, match="no such error model file"):
        check_error_model(str(tmp_path / "missing.npz"), fitted)


def test_fitting_reads_train_episodes_only(tiny):
    with pytest.raises(ValueError, match="train mode"):
        fit_error_regression(gym.make("SegAL-Synthetic-v0", mode="test", **tiny))
    env = gym.make("SegAL-Synthetic-v0", **tiny)
    for bad, match in (
        ({"episodes": 0}, "episodes and rounds must be >= 1"),
        ({"rounds": 0}, "episodes and rounds must be >= 1"),
        ({"behaviour": "margn"}, "unknown behaviour"),
    ):
        with pytest.raises(ValueError, match=match):
            fit_error_regression(env, **bad)
    model = fit_error_regression(env, episodes=1, seed=3)
    assert model.info["class_names"] == list(env.unwrapped.class_names)
    assert model.info["env_settings"] == env_settings(env.unwrapped.config)
    weighted = fit_error_regression(env, episodes=1, seed=3, rarity_weighted=True)  # same regression, other policy
    assert np.array_equal(weighted.weights, model.weights) and weighted.info["rarity_weighted"]
    steps = env.unwrapped.config.steps_per_episode
    assert model.info["rows"] == steps * 4 * 3  # every valid candidate of every step (4 pools x 3)
    assert model.width == feature_layout(env).candidate_dim
    assert np.array_equal(fit_error_regression(env, episodes=1, seed=3).weights, model.weights)  # reproducible
    dagger = fit_error_regression(env, episodes=1, seed=3, rounds=2)  # round 2: an episode the model itself plays
    assert dagger.info["rows"] == 2 * model.info["rows"] and dagger.info["rounds"] == 2
    assert not np.array_equal(dagger.weights, model.weights)


def test_fit_command_writes_a_policy_that_evaluates_like_any_other(tiny, tmp_path):
    out = tmp_path / "error_model.npz"
    info = error_model.main(["--env-kwargs", *as_cli(tiny), "--episodes", "1", "--out", str(out)])
    assert info["out"] == str(out) and info["rows"] > 0 and info["versions"]["torch"]
    test_env = gym.make("SegAL-Synthetic-v0", mode="test", **tiny)
    agent = make_agent(str(out), test_env)
    assert isinstance(agent, ErrorRegression)
    episode = play_episode(agent, test_env, seed=5)
    assert episode.final_info["regions_labeled"] == test_env.unwrapped.config.budget
    again = play_episode(make_agent(str(out), test_env), test_env, seed=5)
    assert again.rewards == episode.rewards  # it draws no random numbers: the same episode twice


def test_a_model_used_at_another_region_size_or_scale_warns(tiny, tmp_path):
    """The row has the same width at any region size, so nothing refuses it; the fit's settings are recorded and
    a change is named (the scale-0.5 CamVid model lost to margin at full resolution: docs/benchmark_camvid.md)."""
    out = tmp_path / "error_model.npz"
    info = error_model.main(["--env-kwargs", *as_cli(tiny), "--episodes", "1", "--rarity-weighted", "--out", str(out)])
    same = gym.make("SegAL-Synthetic-v0", mode="test", **tiny)
    assert info["env_settings"] == env_settings(same.unwrapped.config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the env it was fitted on: no warning
        assert make_agent(str(out), same).rarity_weighted
    for other, named in (
        ({"region_size": (12, 16)}, r"region_size \[24, 32\] -> \[12, 16\]"),
        ({"scale": 0.5}, "scale"),
    ):
        with pytest.warns(UserWarning, match=named):
            make_agent(str(out), gym.make("SegAL-Synthetic-v0", mode="test", **{**tiny, **other}))


@pytest.mark.parametrize(
    "bad",
    [
        ["--out", "model.zip"],
        ["--episodes", "0"],
        ["--rounds", "0"],
        ["--ridge", "0"],
        ["--behaviour", "margn"],
        ["--env-kwargs", "mode=test"],
        ["--env-kwargs", "budgett=3"],
        ["--out", "."],
        ["--out", "a_file/model.npz"],
    ],
)
def test_fit_command_refuses_bad_options_before_any_env(bad, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the default --out folder, runs/, is made here
    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.setattr(gym, "make", lambda *a, **k: pytest.fail("an env was built"))
    with pytest.raises(SystemExit) as exit_info:
        error_model.main(bad)
    assert exit_info.value.code == 2
