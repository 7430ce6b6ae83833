"""The start-network cache (segal_env.start_network): a damaged, truncated or foreign file is named in a
warning and rebuilt, never used."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

import segal_env  # noqa: F401 - registers the ids
from segal_env.start_network import weights_sha256

from conftest import TINY_SYNTHETIC

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def start_miou(cache) -> float:
    env = gym.make("SegAL-Synthetic-v0", **{**TINY_SYNTHETIC, "cache_dir": str(cache), "device": "cpu"})
    try:
        return float(env.reset(seed=0)[1]["miou"])
    finally:
        env.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A fresh cache of the tiny configuration's (train-mode) start network and its D_R mIoU."""
    cache = tmp_path_factory.mktemp("start_cache")
    miou = start_miou(cache)
    (path,) = cache.glob("*.pt")
    return cache, path, path.read_bytes(), miou


def test_a_sound_file_is_used_and_carries_its_hash(reference, recwarn):
    cache, path, _, miou = reference
    saved = torch.load(path, weights_only=True)
    assert saved["sha256"] == weights_sha256(saved["model"])
    assert start_miou(cache) == miou and not [w for w in recwarn if "start-network cache" in str(w.message)]


@pytest.mark.parametrize("damage", ["truncated", "weights", "foreign", "no_hash"])
def test_a_damaged_file_is_named_and_rebuilt(reference, damage):
    cache, path, original, miou = reference
    saved = torch.load(path, weights_only=True)
    if damage == "truncated":
        path.write_bytes(original[: len(original) // 2])
        expected = "cannot be read"
    elif damage == "weights":  # loads fine, but the weights are not the ones trained (and hashed)
        saved["model"] = {k: torch.zeros_like(v) for k, v in saved["model"].items()}
        torch.save(saved, path)
        expected = "do not match their stored sha256"
    elif damage == "foreign":  # another configuration's file under this name
        saved["report"]["description"]["pretrain"]["steps"] += 1
        torch.save(saved, path)
        expected = "another configuration"
    else:  # a file of an older segal without the hash: used as is, and the hash is added
        del saved["sha256"]
        torch.save(saved, path)
        expected = None
    if expected is None:
        assert start_miou(cache) == miou
    else:
        with pytest.warns(RuntimeWarning, match=rf"start-network cache {path}: .*{expected}.*rebuilding"):
            assert start_miou(cache) == miou  # rebuilt: the same network as the first time
    rebuilt = torch.load(path, weights_only=True)
    assert rebuilt["sha256"] == weights_sha256(rebuilt["model"])
    path.write_bytes(original)
