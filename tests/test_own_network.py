"""Bring your own network: ``model=`` takes a factory, its import path or a registered name."""

from pathlib import Path

import gymnasium as gym
import pytest
import torch
from torch import nn

import segal_env  # noqa: F401
from segal_env.models import ForeignNet, build_model, register_model


def small_net(num_classes: int, dropout: float = 0.5) -> nn.Module:
    """What a user might bring: a plain nn.Sequential with dropout before the classifier, logits at half size."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Dropout2d(dropout),
        nn.Conv2d(8, num_classes, 1),
    )


def no_dropout_net(num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, num_classes, 1))


def wrong_classes_net(num_classes: int) -> nn.Module:
    return nn.Conv2d(3, num_classes + 1, 1)


def test_a_plain_module_is_wrapped_and_upsampled_to_the_input_size():
    model = build_model(small_net, num_classes=5).eval()
    assert isinstance(model, ForeignNet)
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 48)).shape == (2, 5, 32, 48)


def test_mc_dropout_samples_the_foreign_networks_dropout_layers():
    torch.manual_seed(0)
    model = build_model(small_net, num_classes=4, dropout=0.5).eval()
    with torch.no_grad():
        model.net[-1].weight.mul_(30)  # confident logits, so that dropout draws disagree
    mutual_information = model.mc_mutual_information(torch.randn(1, 3, 16, 16), samples=4)
    assert mutual_information.shape == (1, 8, 8) and float(mutual_information.mean()) > 1e-3
    assert not model.training and not model.net[3].training  # sampling leaves the network in eval mode


def test_env_trains_and_caches_a_network_given_by_factory_or_import_path(tiny_kwargs, one_torch_thread):
    env = gym.make("SegAL-Synthetic-v0", **tiny_kwargs, model=small_net)
    obs, info = env.reset(seed=0)
    obs, reward, *_ = env.step(env.action_space.sample())
    assert isinstance(env.unwrapped.trainer.model, ForeignNet)
    assert env.unwrapped.config.to_dict()["model"] == f"{__name__}:small_net"  # JSON-able, for config.json
    cached = sorted(Path(tiny_kwargs["cache_dir"]).rglob("*small_net*.pt"))
    assert len(cached) == 1

    # the same network by import path (what a command line passes) loads that cached start network
    before = cached[0].stat().st_mtime_ns
    env = gym.make("SegAL-Synthetic-v0", **tiny_kwargs, model=f"{__name__}:small_net")
    env.reset(seed=0)
    assert sorted(Path(tiny_kwargs["cache_dir"]).rglob("*small_net*.pt")) == cached
    assert cached[0].stat().st_mtime_ns == before


def test_a_registered_name_builds_the_registered_factory(tiny_kwargs, one_torch_thread):
    register_model("my_small_net", small_net)
    env = gym.make("SegAL-Synthetic-v0", **tiny_kwargs, model="my_small_net")
    env.reset(seed=0)
    assert isinstance(env.unwrapped.trainer.model, ForeignNet)
    with pytest.raises(ValueError, match="built-in"):
        register_model("unet_tiny", small_net)


def test_a_network_without_dropout_needs_bald_left_out(tiny_kwargs, one_torch_thread):
    env = gym.make("SegAL-Synthetic-v0", **tiny_kwargs, model=no_dropout_net)
    with pytest.raises(ValueError, match="no dropout layer.*extra_features="):
        env.reset(seed=0)
    env = gym.make("SegAL-Synthetic-v0", **tiny_kwargs, model=no_dropout_net, extra_features=["entropy", "margin"])
    env.reset(seed=0)
    env.step(env.action_space.sample())


def test_wrong_output_shape_is_named(tiny_kwargs):
    env = gym.make("SegAL-Synthetic-v0", **tiny_kwargs, model=wrong_classes_net, extra_features=["entropy"])
    with pytest.raises(ValueError, match=r"logits \[B, \d+, h, w\]"):
        env.reset(seed=0)


def test_unknown_names_and_paths_say_how_to_bring_a_network():
    with pytest.raises(ValueError, match="register_model"):
        gym.make("SegAL-Synthetic-v0", model="resnet9000")
    with pytest.raises(ValueError, match="cannot import"):
        gym.make("SegAL-Synthetic-v0", model="no_such_package.nets:build")
