"""Where and how torch runs: the device, seeded blocks, the thread count and the allocator.

Everything that tunes the process rather than the method lives here, so the env, the trainer and
the data generators share one definition of each.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator
from functools import lru_cache

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else the CPU; anything else is passed to ``torch.device``."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextlib.contextmanager
def seeded_torch(seed: int, device: torch.device) -> Iterator[None]:
    """Run a block with torch's global RNG (dropout) seeded, restoring the caller's RNG afterwards."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if devices else "cuda"):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def torch_threads(count: int = 1) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(count)``, restoring the caller's setting afterwards. train.py,
    evaluate.py, segal-select-rule and segal-request default to one thread: float sums in another order train
    another network."""
    threads = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def thread_count(text: str) -> int:
    """argparse ``type=`` of every command's ``--threads``: an int >= 1, refused while parsing (before any work)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or str(value) != text.strip():
        raise argparse.ArgumentTypeError(f"must be a whole number of torch threads >= 1, got {text!r}")
    return value


@lru_cache(maxsize=1)
def tune_allocator() -> None:
    """Keep freed memory in glibc's heap instead of returning it to the OS after every tensor.

    Training loops allocate and free the same large buffers each step; with the default thresholds
    glibc unmaps and re-maps them every time. Measured on 30 U-Net train + inference steps on CPU:
    system time 1.21 s -> 0.18 s (docs/environment.md). Set SEGAL_NO_MALLOPT=1 to leave malloc alone.
    """
    if not sys.platform.startswith("linux") or os.environ.get("SEGAL_NO_MALLOPT"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl): nothing to tune
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_trim_threshold, 1 << 30)
    libc.mallopt(m_mmap_threshold, 1 << 30)
