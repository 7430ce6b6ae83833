"""SegALEnv behaviour, driven by the registry: checkers, determinism, reward definition, masks, errors."""

from __future__ import annotations

import pickle
import warnings

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
import torch

import segal_env
from segal_env import ENV_IDS


@pytest.fixture
def tiny(tiny_kwargs):
    return {**tiny_kwargs, "device": "cpu"}


def make(tiny, **overrides) -> gym.Env:
    return gym.make("SegAL-Synthetic-v0", **{**tiny, **overrides})


def first_valid(obs) -> np.ndarray:
    return obs["action_mask"].argmax(1)


def run_episode(env, seed, policy=first_valid):
    obs, info = env.reset(seed=seed)
    trajectory = {"obs": [obs], "rewards": [], "infos": [info]}
    terminated = False
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        assert not truncated
        trajectory["obs"].append(obs)
        trajectory["rewards"].append(reward)
        trajectory["infos"].append(info)
    return trajectory


def test_every_dataset_is_registered():
    for env_id, dataset in ENV_IDS.items():
        assert env_id in gym.registry
        assert gym.registry[env_id].kwargs["dataset"] == dataset


def test_gymnasium_env_checker_passes_on_the_env_gym_make_returns(tiny):
    from gymnasium.utils.env_checker import check_env

    env = make(tiny)  # default kwargs: the step timings stay out of info, so two identical steps compare equal
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=False)
        check_env(env.unwrapped, skip_render_check=False)
    messages = [str(w.message) for w in caught if "gymnasium" in str(w.filename) or "segal" in str(w.filename)]
    assert [m for m in messages if "different from the unwrapped version" not in m] == []


def test_step_timings_are_available_on_request(tiny):
    env = make(tiny)
    env.reset(seed=0)
    _, _, _, _, info = env.step(first_valid({"action_mask": env.unwrapped.action_masks().reshape(4, 3)}))
    assert "timing" not in info
    assert set(env.unwrapped.last_timing) >= {"finetune", "reward", "features", "total"}
    env = make(tiny, timing_in_info=True)
    obs, _ = env.reset(seed=0)
    _, _, _, _, info = env.step(first_valid(obs))
    assert info["timing"]["total"] > 0


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("freeze_bn", "False", "bool"),
        ("lr", "1e-3", "float"),
        ("budget", 16.0, "int"),
        ("num_pools", True, "int"),
        ("region_size", "24x32", "tuple"),
        ("extra_features", "entropy", "tuple"),
    ],
)
def test_wrongly_typed_settings_name_key_type_and_value(tiny, key, value, expected):
    with pytest.raises(TypeError) as error:
        make(tiny, **{key: value})
    message = str(error.value)
    assert f"'{key}'" in message and expected in message and repr(value) in message


def test_sb3_env_checker_passes(tiny):
    from stable_baselines3.common.env_checker import check_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(make(tiny, timing_in_info=False).unwrapped, warn=True)
    messages = {str(w.message) for w in caught if "stable_baselines3" in str(w.filename)}
    # expected and documented (README): the per-region feature sets are 2-D/3-D on purpose, and SB3's
    # shape heuristics take the 3-D candidates [K, N, Da] for an image; MultiInputPolicy does not (float32)
    expected = ("has an unconventional shape", "is an image", "minimal resolution for an image", "channels-last")
    assert {m for m in messages if not any(e in m for e in expected)} == set()


def test_observation_matches_space_and_layout(tiny):
    env = make(tiny)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    layout = env.unwrapped.feature_layout
    assert obs["candidates"].shape == (4, 3, layout.candidate_dim)
    assert obs["state"].shape == (2 * env.unwrapped.grid.per_image, layout.state_dim)
    hist = obs["candidates"][..., layout.class_hist]
    assert np.allclose(hist.sum(-1), 1.0, atol=1e-5)  # predicted-class histogram is normalised
    assert np.allclose(obs["candidates"][..., layout.kl_candidates].sum(-1), 1.0, atol=1e-5)
    reward_set = env.unwrapped.roles.d_r
    assert info["regions_labeled"] == 0
    assert info["miou"] == pytest.approx(env.unwrapped.trainer.evaluate(reward_set.images, reward_set.labels).miou)


def test_same_seed_gives_the_same_episode(tiny):
    a = run_episode(make(tiny), seed=3)
    b = run_episode(make(tiny), seed=3)
    assert a["rewards"] == b["rewards"]
    for obs_a, obs_b in zip(a["obs"], b["obs"]):
        for key in obs_a:
            np.testing.assert_array_equal(obs_a[key], obs_b[key])
    c = run_episode(make(tiny), seed=4)
    assert not np.array_equal(a["obs"][0]["candidates"], c["obs"][0]["candidates"])


def test_rewards_sum_to_scaled_mIoU_gain_and_budget_terminates(tiny):
    env = make(tiny)
    trajectory = run_episode(env, seed=0)
    start, end = trajectory["infos"][0]["miou"], trajectory["infos"][-1]["miou"]
    assert len(trajectory["rewards"]) == 16 // 4
    assert sum(trajectory["rewards"]) == pytest.approx(100.0 * (end - start), abs=1e-9)
    assert trajectory["infos"][-1]["regions_labeled"] == 16
    assert sum(trajectory["infos"][-1]["labeled_pixels_per_class"]) > 0
    assert all(isinstance(r, float) for r in trajectory["rewards"])


def test_gain_over_random_reward_leaves_the_episode_unchanged_and_subtracts_the_reference(tiny):
    plain = run_episode(make(tiny), seed=2)
    relative = run_episode(make(tiny, reward="gain_over_random"), seed=2)
    # the reference fine-tuning is undone: the same network, labels and observations as with the plain reward
    assert [i["miou"] for i in relative["infos"]] == [i["miou"] for i in plain["infos"]]
    np.testing.assert_array_equal(relative["obs"][-1]["candidates"], plain["obs"][-1]["candidates"])
    for reward, plain_reward, info in zip(relative["rewards"], plain["rewards"], relative["infos"][1:]):
        assert reward == pytest.approx(plain_reward - 100.0 * info["reference_gain"], abs=1e-9)
    assert any(info["reference_gain"] != 0.0 for info in relative["infos"][1:])
    with pytest.raises(ValueError, match="reward must be one of"):
        make(tiny, reward="gain_over_entropy")


def test_final_gain_reward_is_the_final_training_score_of_the_labels_and_leaves_the_episode_unchanged(tiny):
    plain = run_episode(make(tiny), seed=2)
    env = make(tiny, reward="final_gain")
    env.reset(seed=2)
    start_score = env.unwrapped.reward_set_final_score(seed=0)  # the start set alone: the first step's "before"
    final = run_episode(env, seed=2)
    # the final training is undone: the same network, labels and observations as with the plain reward
    assert [i["miou"] for i in final["infos"]] == [i["miou"] for i in plain["infos"]]
    np.testing.assert_array_equal(final["obs"][-1]["candidates"], plain["obs"][-1]["candidates"])
    scores = [start_score] + [i["reward_final_miou"] for i in final["infos"][1:]]
    np.testing.assert_allclose(final["rewards"], 100.0 * np.diff(scores), atol=1e-9)
    assert len(set(final["rewards"])) > 1 and final["rewards"] != plain["rewards"]
    # a function of the labels: scoring the end labels again (any seed) gives the last score, and the rewards
    # sum to the whole episode's worth
    assert env.unwrapped.reward_set_final_score(seed=123) == pytest.approx(scores[-1], abs=1e-9)
    assert sum(final["rewards"]) == pytest.approx(100.0 * (scores[-1] - scores[0]), abs=1e-6)
    assert run_episode(make(tiny, reward="final_gain"), seed=2)["rewards"] == final["rewards"]
    with pytest.raises(ValueError, match="final_start=start final_seed=fixed"):
        make(tiny, reward="final_gain", final_seed="episode")


def test_reset_restores_the_starting_network(tiny):
    env = make(tiny)
    env.reset(seed=0)
    start = {k: v.clone() for k, v in env.unwrapped.trainer.model.state_dict().items()}
    run_episode(env, seed=0)
    assert any(not torch.equal(start[k], v) for k, v in env.unwrapped.trainer.model.state_dict().items())
    _, info = env.reset(seed=1)
    assert all(torch.equal(start[k], v) for k, v in env.unwrapped.trainer.model.state_dict().items())
    assert env.unwrapped.trainer.optimizer.state_dict()["state"] == {}
    assert info["regions_labeled"] == 0


def test_invalid_actions_raise_clear_errors(tiny):
    env = make(tiny)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        env.step(np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match=r"indices must be in \[0, 3\)"):
        env.step(np.array([0, 1, 3, 0]))
    with pytest.raises(ValueError, match="integer"):
        env.step(np.array([0.5, 0, 0, 0]))


def test_pool_running_low_is_masked(tiny):
    # 2 pool images x 16 regions = 32; budget 28 leaves 8 unlabeled (< K*N = 12) at the last step
    env = make(tiny, role_sizes={"d_s": 2, "d_t": 2}, budget=28)
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        obs, *_ = env.step(first_valid(obs))
    assert obs["action_mask"].sum() == 32 - 20 == 12
    obs, *_ = env.step(first_valid(obs))
    mask = obs["action_mask"]
    assert mask.sum() == 8 and (mask.sum(1) >= 1).all()
    assert np.array_equal(env.unwrapped.action_masks(), mask.reshape(-1) > 0.5)
    assert (obs["candidates"][mask == 0] == 0).all()
    masked_pool, masked_slot = np.argwhere(mask == 0)[0]
    action = first_valid(obs)
    action[masked_pool] = masked_slot
    with pytest.raises(ValueError, match="masked candidate"):
        env.step(action)


def test_bad_configurations_name_the_fix(tiny):
    with pytest.raises(ValueError, match="larger than the pool"):
        make(tiny, budget=12 * 16 + 4)
    with pytest.raises(ValueError, match="not a multiple of num_pools"):
        make(tiny, budget=18)
    with pytest.raises(ValueError, match="does not tile"):
        make(tiny, region_size=(25, 32))
    with pytest.raises(ValueError, match="unknown dataset"):
        segal_env.SegALEnv(dataset="imagenet")
    with pytest.raises(ValueError, match="mc_samples"):
        make(tiny, mc_samples=0)
    with pytest.raises(ValueError, match="optimizer must be"):
        make(tiny, optimizer="rmsprop")
    with pytest.raises(ValueError, match="batch_size must be"):
        make(tiny, batch_size=0)


def test_whole_image_crops_train_each_image_once_with_all_its_regions(tiny):
    env = make(tiny)  # the synthetic preset fine-tunes on whole images
    env.reset(seed=0)
    u = env.unwrapped
    assert u.config.crop_size == u.grid.image_size
    regions = torch.tensor([0, 1, 5, 16 * 3 + 2])  # three regions of image 0, one of image 3
    u.labeled.mark(regions)
    images, targets, position, boxes = u.data.regions(regions)
    assert images.shape[0] == 2 and position.tolist() == [0, 1]
    assert (boxes == torch.tensor([0, 0, *u.grid.image_size])).all()
    expected = torch.full_like(targets[0], u.ignore_index)
    for y0, x0, y1, x1 in u.grid.boxes(torch.tensor([0, 1, 5])).tolist():
        expected[y0:y1, x0:x1] = u.data.pool_labels[0, y0:y1, x0:x1]
    assert torch.equal(targets[0], expected)  # image 0's sample carries exactly its three labeled regions


def test_final_training_uses_the_start_set_and_the_acquired_regions(tiny):
    env = make(tiny, mode="test", final_training=True)
    env.reset(seed=0)
    u = env.unwrapped
    seen = {}
    original = u.trainer.train_steps

    def spy(images, targets, sample_image, sample_box, *args, **kwargs):
        seen.update(images=images.clone(), targets=targets.clone(), steps=args[2])
        return original(images, targets, sample_image, sample_box, *args, **kwargs)

    u.trainer.train_steps = spy
    start_state = {k: v.clone() for k, v in u.trainer.model.state_dict().items()}
    chosen = u.pools[:, 0].clone()
    u.labeled.mark(chosen)
    result = u._test_evaluation(seed=1)
    start = u.roles.d_t.images if u.config.start_set == "d_t" else u.roles.d_s.images
    n_region_images = len(torch.unique(torch.div(chosen, u.grid.per_image, rounding_mode="floor")))
    assert seen["steps"] == u.config.final_steps
    assert seen["images"].shape[0] == n_region_images + len(start)
    assert torch.equal(seen["images"][n_region_images:], start)  # every start image, fully labeled
    assert (seen["targets"][n_region_images:] != u.ignore_index).any()
    assert 0.0 <= result["test_miou"] <= 1.0
    # the episode goes on from the un-trained network: the final training works on a copy
    assert all(torch.equal(v, start_state[k]) for k, v in u.trainer.model.state_dict().items())


def test_replay_schedule_rehearses_start_set_images(tiny):
    env = make(tiny, finetune="replay", crop_size=(48, 64))
    obs, _ = env.reset(seed=0)
    u = env.unwrapped
    chosen = u.pools[:, 0].clone()
    earlier = u.labeled.labeled_ids()
    u.labeled.mark(chosen)
    images, targets, position, boxes = u.data.step_samples(
        "replay", chosen, earlier, u.data.replay_pick("replay", u.np_random, earlier.numel(), len(chosen))
    )
    # first step: nothing labeled before, so the K replayed samples come from the 2 start (D_S) images
    start = u.roles.d_s.images
    assert position.numel() == len(chosen) + len(start)
    replayed = images[position[len(chosen) :]]
    assert sorted(int((img == start).flatten(1).all(1).nonzero()) for img in replayed) == [0, 1]
    replayed_targets = targets[position[len(chosen) :]]
    assert all(
        any(torch.equal(t, label.long()) for label in u.roles.d_s.labels) for t in replayed_targets
    )  # full labels


def test_env_pickles_and_runs_in_subprocesses(tiny):
    from stable_baselines3.common.vec_env import SubprocVecEnv

    env = make(tiny)
    env.reset(seed=0)
    clone = pickle.loads(cloudpickle.dumps(env))
    np.testing.assert_array_equal(clone.unwrapped.action_masks(), env.unwrapped.action_masks())
    # SB3's default start method (forkserver): forking a process whose torch thread pool is running can hang
    vec = SubprocVecEnv([lambda: make(tiny) for _ in range(2)])
    try:
        obs = vec.reset()
        assert obs["candidates"].shape[0] == 2
        obs, rewards, dones, infos = vec.step(np.zeros((2, 4), dtype=int))
        assert rewards.shape == (2,) and "miou" in infos[0]
    finally:
        vec.close()


def test_ppo_multi_input_policy_runs_unchanged(tiny):
    from stable_baselines3 import PPO

    env = make(tiny)
    model = PPO("MultiInputPolicy", env, n_steps=4, batch_size=4, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=8)
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert env.action_space.contains(action)


def test_render_shows_pools_and_chosen_regions(tiny):
    env = make(tiny, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    env.step(first_valid(obs))
    frame = env.render()
    height, width = env.unwrapped.grid.image_size
    assert frame.dtype == np.uint8 and frame.shape == (2 * height, 4 * width, 3)
    top = frame[:height]
    assert ((top[..., 0] == 255) & (top[..., 1] == 0) & (top[..., 2] == 0)).any()  # chosen regions in red
    assert ((top[..., 0] == 255) & (top[..., 1] == 220) & (top[..., 2] == 0)).any()  # candidates in yellow


def test_test_mode_reports_test_miou_at_eval_budgets(tiny):
    env = make(tiny, mode="test", eval_budgets=[8])
    trajectory = run_episode(env, seed=0)
    with_test = [i["regions_labeled"] for i in trajectory["infos"] if "test_miou" in i]
    assert with_test == [8, 16]
    assert 0.0 <= trajectory["infos"][-1]["test_miou"] <= 1.0


def test_camvid_smoke(camvid_root, tmp_path):
    env = gym.make(
        "SegAL-CamVid-v0",
        data_root=str(camvid_root),
        roles_file=str(camvid_root / "ralis_splits.json"),
        scale=0.25,
        region_size=(30, 40),
        num_pools=4,
        pool_size=3,
        budget=8,
        pretrain_steps=2,
        final_steps=2,
        mc_samples=2,
        cache_dir=str(tmp_path),
        device="cpu",
    )
    obs, info = env.reset(seed=0)
    assert obs["state"].shape == (10 * 9, 11 + 192)
    rewards = []
    terminated = False
    while not terminated:
        obs, reward, terminated, _, info = env.step(first_valid(obs))
        rewards.append(reward)
    assert len(rewards) == 2 and info["regions_labeled"] == 8
    assert np.isfinite(rewards).all()


def test_the_env_exposes_its_resolved_settings(tiny):
    env = make(tiny, mode="test", eval_budgets=[8])
    config = env.unwrapped.config
    assert (config.mode, config.num_pools, config.pool_size, config.budget, config.eval_budgets) == (
        "test",
        4,
        3,
        16,
        [8],
    )
    assert (
        config.crop_size == env.unwrapped.grid.image_size
    )  # the preset's whole-image crops, resolved against the data
    assert config.model == "unet_tiny" and config.finetune == "replay" and config.steps_per_episode == 4


def test_action_masks_before_reset_say_to_reset(tiny):
    with pytest.raises(RuntimeError, match="reset"):
        make(tiny).unwrapped.action_masks()
