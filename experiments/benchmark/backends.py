"""Where the runs execute: in this process, in a pool of worker processes, or as Ray tasks.

Every backend has the same two calls:

- ``describe(spec, check_policies)``: build the env once (pre-trains and caches the starting network
  before the runs fan out, validates the configuration) and return its description;
- ``run(specs, on_event, on_result, on_error)``: execute the runs, calling back *in the driver* with
  progress events, finished result records and failures. Workers never write result files; the
  driver does, so results land where the driver can read them whatever the backend.

Numbers do not depend on the backend: a run is a pure function of its RunSpec (fresh env, seeded
reset, seeded baseline), and each worker sets the same torch thread count (``RunSpec.torch_threads``).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_module
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import replace
from typing import Callable, Iterable

import torch

from experiments.benchmark.runner import RunSpec, describe_env, run_episode

EventFn = Callable[[dict], None]
ResultFn = Callable[[RunSpec, dict], None]
ErrorFn = Callable[[RunSpec, str], None]

RAY_EXTRA_HINT = 'pip install -e ".[ray]"  (or: pip install "ray>=2.9")'
POLL_S = 0.2


def import_ray():
    """Ray is an optional extra: import it only when a Ray backend is asked for."""
    try:
        import ray
    except ImportError as error:
        raise RuntimeError(
            f"the Ray backend needs the optional 'ray' extra, which is not installed: {RAY_EXTRA_HINT}"
        ) from error
    return ray


def cuda_devices() -> list[str]:
    """["cuda:0", "cuda:1", ...] for the GPUs this process sees (no CUDA context is created)."""
    try:
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - a broken CUDA install means "no GPU" here
        return []


def _wants_auto_device(device: str) -> bool:
    return str(device) in ("auto", "cuda")


class Backend:
    name = "backend"

    def describe(self, spec: RunSpec, check_policies: list[tuple[str, str]] | None = None) -> dict:
        raise NotImplementedError

    def run(self, specs: Iterable[RunSpec], on_event: EventFn, on_result: ResultFn, on_error: ErrorFn) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---- serial ----------------------------------------------------------------------------------------
class SerialBackend(Backend):
    """Runs one after the other in this process."""

    name = "serial"

    def describe(self, spec, check_policies=None):
        return describe_env(spec, check_policies)

    def run(self, specs, on_event, on_result, on_error):
        for spec in specs:
            try:
                record = run_episode(spec, on_event)
            except KeyboardInterrupt:
                raise
            except Exception:  # noqa: BLE001 - one failed run must not stop the others
                on_error(spec, traceback.format_exc())
            else:
                on_result(spec, record)


# ---- process pool ----------------------------------------------------------------------------------
_WORKER: dict = {}


def _worker_init(events, counter, devices: list[str] | None) -> None:
    """Runs once in every worker process: remember the event queue and take a GPU round-robin."""
    _WORKER["events"] = events
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    _WORKER["device"] = devices[index % len(devices)] if devices else None


def _worker_spec(spec: RunSpec) -> RunSpec:
    device = _WORKER.get("device")
    if device and _wants_auto_device(spec.device):
        return replace(spec, device=device)
    return spec


def _worker_emit(event: dict) -> None:
    try:
        _WORKER["events"].put_nowait(event)
    except Exception:  # noqa: BLE001 - progress is best effort, never fail a run for it
        pass


def _worker_run(spec: RunSpec) -> dict:
    return run_episode(_worker_spec(spec), _worker_emit)


def _worker_describe(spec: RunSpec, check_policies) -> dict:
    return describe_env(_worker_spec(spec), check_policies)


class ProcessBackend(Backend):
    """A pool of ``workers`` spawned processes on this machine.

    Each run sets its own torch thread count (``RunSpec.torch_threads``: ``--threads``, else 1, as the
    protocol chooses for every backend). With several GPUs, each worker takes one, round-robin.
    """

    name = "processes"

    def __init__(self, workers: int, devices: list[str] | None = None) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = int(workers)
        self.devices = devices
        # glibc allocator thresholds that keep freed training buffers mapped (the env sets the same with
        # mallopt, segal_env.runtime.tune_allocator); only the spawned children see them, and only when
        # the user has not set them
        os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "4294967296")
        os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", "4294967296")
        ctx = mp.get_context("spawn")  # fork after torch has started threads is unsafe
        self._events = ctx.Queue()
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=ctx,
            initializer=_worker_init,
            initargs=(self._events, ctx.Value("i", 0), devices),
        )

    def _drain(self, on_event: EventFn) -> None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue_module.Empty:
                return
            on_event(event)

    def describe(self, spec, check_policies=None):
        return self._pool.submit(_worker_describe, spec, check_policies).result()

    def run(self, specs, on_event, on_result, on_error):
        futures = {self._pool.submit(_worker_run, spec): spec for spec in specs}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
                self._drain(on_event)
                for future in done:
                    spec = futures[future]
                    error = future.exception()
                    if error is not None:
                        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
                        on_error(spec, text)
                    else:
                        on_result(spec, future.result())
            self._drain(on_event)
        except BaseException:
            for future in pending:
                future.cancel()
            raise

    def close(self):
        self._pool.shutdown(wait=True, cancel_futures=True)


# ---- Ray -------------------------------------------------------------------------------------------
def _ray_task(spec: RunSpec, events) -> dict:
    def emit(event: dict) -> None:
        if events is None:
            return
        try:
            events.put_nowait(event)
        except Exception:  # noqa: BLE001 - progress is best effort
            pass

    return run_episode(spec, emit)


def _ray_describe(spec: RunSpec, check_policies) -> dict:
    return describe_env(spec, check_policies)


class RayBackend(Backend):
    """Runs as Ray tasks: on the cluster at ``address``, or on a new local Ray instance (``None`` or
    "local") bound to the loopback interface with ``num_cpus`` CPUs and no dashboard.

    Each task asks for ``cpus_per_task`` CPUs (its torch thread count) and ``gpus_per_task`` GPUs (a
    fraction shares a GPU). Tasks return the result record; the driver writes the files. On a remote
    cluster every node needs this project installed (``pip install -e .`` or a runtime_env).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        cpus_per_task: float = 1.0,
        gpus_per_task: float = 0.0,
        num_cpus: int | None = None,
        num_gpus: int | None = None,
    ) -> None:
        ray = import_ray()
        self.ray = ray
        self.address = address
        self.cpus_per_task, self.gpus_per_task = float(cpus_per_task), float(gpus_per_task)
        self._owns_cluster = False
        if not ray.is_initialized():
            if address in (None, "", "local"):
                # "local" always starts a fresh instance (address=None could join another user's cluster).
                # _node_ip_address asks for loopback; note that Ray (2.60) maps it back to the node's own IP
                # and its gRPC servers may still listen on every interface (guarded by Ray's token auth)
                ray.init(
                    address="local",
                    num_cpus=num_cpus,
                    num_gpus=num_gpus,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    logging_level="warning",
                    log_to_driver=False,
                )
                self._owns_cluster = True
            else:
                try:
                    ray.init(address=address, logging_level="warning", log_to_driver=False)
                except Exception as error:  # noqa: BLE001 - ConnectionError, AuthenticationError, ...
                    lines = [line for line in str(error).strip().splitlines() if line.strip()]
                    raise RuntimeError(
                        f"could not connect to the Ray cluster at {address!r}: {lines[-1] if lines else type(error).__name__}"
                        " (is the cluster running, the address right, and its auth token available, e.g. RAY_AUTH_TOKEN?)"
                    ) from error
        options = {"num_cpus": self.cpus_per_task, "num_gpus": self.gpus_per_task, "max_retries": 0}
        self._run_task = ray.remote(_ray_task).options(**options)
        self._describe_task = ray.remote(_ray_describe).options(**options)

    def _task_spec(self, spec: RunSpec) -> RunSpec:
        if _wants_auto_device(spec.device):
            # Ray exposes the task's GPU share through CUDA_VISIBLE_DEVICES: it is always "cuda" inside
            return replace(spec, device="cuda" if self.gpus_per_task > 0 else "cpu")
        return spec

    def describe(self, spec, check_policies=None):
        return self.ray.get(self._describe_task.remote(self._task_spec(spec), check_policies))

    def run(self, specs, on_event, on_result, on_error):
        ray = self.ray
        from ray.util.queue import Queue

        events = Queue(actor_options={"num_cpus": 0})
        refs = {self._run_task.remote(self._task_spec(spec), events): spec for spec in specs}

        def drain() -> None:
            size = events.qsize()
            if size:
                for event in events.get_nowait_batch(size):
                    on_event(event)

        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1, timeout=POLL_S)
                drain()
                for ref in ready:
                    spec = refs.pop(ref)
                    try:
                        record = ray.get(ref)
                    except Exception as error:  # noqa: BLE001 - RayTaskError carries the remote traceback
                        on_error(spec, str(error))
                    else:
                        on_result(spec, record)
            drain()
        except BaseException:
            for ref in refs:
                ray.cancel(ref, force=True)
            raise
        finally:
            events.shutdown()

    def close(self):
        if self._owns_cluster and self.ray.is_initialized():
            self.ray.shutdown()


def make_backend(
    workers: int = 1,
    ray_address: str | None | bool = False,
    ray_cpus: float = 1.0,
    ray_gpus: float = 0.0,
    device: str = "auto",
    local_ray_cpus: int | None = None,
) -> Backend:
    """``ray_address``: False = no Ray; None / "local" = a new local Ray instance; else a cluster address."""
    if ray_address is not False:
        return RayBackend(
            ray_address if isinstance(ray_address, str) else None, ray_cpus, ray_gpus, num_cpus=local_ray_cpus
        )
    if workers > 1:
        devices = cuda_devices() if _wants_auto_device(device) else []
        return ProcessBackend(workers, devices if len(devices) > 1 else None)
    return SerialBackend()
