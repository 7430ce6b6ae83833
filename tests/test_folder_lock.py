"""One writer per output folder (experiments.folder_lock): a live owner is named in the refusal, a killed
one (kill -9) leaves nothing that blocks the next command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.folder_lock import LOCK_NAME, FolderBusy, FolderLock

from conftest import TINY_SYNTHETIC, as_cli

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # train.py is a script at the repository root
HOLD = (
    "import sys, time\n"
    "from experiments.folder_lock import FolderLock\n"
    "lock = FolderLock(sys.argv[1], 'holder.py').acquire()\n"
    "print('ready', flush=True)\n"
    "time.sleep(120)\n"
)


class Holder:
    """Another process that holds ``folder``'s lock until killed."""

    def __init__(self, folder: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True, env=env
        )
        assert self.process.stdout.readline().strip() == "ready"

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def holder(tmp_path):
    made: list[Holder] = []

    def start(folder: Path) -> Holder:
        made.append(Holder(folder))
        return made[-1]

    yield start
    for h in made:
        if h.process.poll() is None:
            h.kill()


def test_a_live_owner_is_named_and_a_killed_one_does_not_block(tmp_path, holder):
    folder = tmp_path / "out"
    owner = holder(folder)
    with pytest.raises(FolderBusy, match=rf"in use by pid {owner.process.pid} on .*holder\.py.*another --out"):
        FolderLock(folder, "test").acquire()
    owner.kill()  # kill -9: no cleanup ran, the lock file still names it
    assert json.loads((folder / LOCK_NAME).read_text())["pid"] == owner.process.pid
    with FolderLock(folder, "test") as lock:
        assert f"pid {owner.process.pid}" in lock.stale_note()
        assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
    with FolderLock(folder, "test") as lock:  # released cleanly: nothing to report
        assert lock.stale_note() is None


def test_the_lock_is_exclusive_within_a_process_too(tmp_path):
    with FolderLock(tmp_path, "first"):
        with pytest.raises(FolderBusy):
            FolderLock(tmp_path, "second").acquire()
    FolderLock(tmp_path, "third").acquire().release()


# ---- the commands ------------------------------------------------------------------------------------
def benchmark_args(out: Path, cache: Path) -> list[str]:
    kwargs = as_cli({**TINY_SYNTHETIC, "cache_dir": str(cache)}, exclude=("budget",))
    return [
        "--device",
        "cpu",
        "--threads",
        "1",
        "--no-progress",
        "--no-plots",
        "--policies",
        "random",
        "--seeds",
        "1",
        "--budgets",
        "4",
        "8",
        "--out",
        str(out),
        "--env-kwargs",
        *kwargs,
    ]


@pytest.mark.usefixtures("one_torch_thread")
def test_two_benchmarks_on_one_folder(tmp_path, segal_cache, holder, capsys):
    from experiments.benchmark.cli import main

    out = tmp_path / "bench"
    (out / "runs").mkdir(parents=True)
    live_temp = out / "runs" / ".random__seed0.abcd.tmp.json"
    live_temp.write_text('{"being written by the other process')
    owner = holder(out)
    assert main(benchmark_args(out, segal_cache)) == 2
    err = capsys.readouterr().err
    assert f"in use by pid {owner.process.pid}" in err and "another --out" in err
    assert live_temp.is_file() and not (out / "benchmark.json").exists()  # nothing of the live writer's touched

    owner.kill()
    assert main(benchmark_args(out, segal_cache)) == 0
    assert f"pid {owner.process.pid}" in capsys.readouterr().out  # the takeover is reported
    assert not live_temp.exists() and (out / "runs" / "random__seed0.json").is_file()


def test_train_refuses_a_folder_in_use(tmp_path, segal_cache, holder, capsys):
    import train

    out = tmp_path / "run"
    owner = holder(out)
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--out", str(out), "--env-kwargs", f"cache_dir={segal_cache}", "--timesteps", "4"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--out:" in err and f"in use by pid {owner.process.pid}" in err
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]


def test_segal_request_refuses_a_folder_in_use(tmp_path, holder, capsys):
    from experiments.requests import main

    out = tmp_path / "requests"
    owner = holder(out)
    argv = ["--images", str(tmp_path / "unlabeled"), "--labeled", str(tmp_path / "labeled"), "--class-names", "a", "b"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--train-model", "--budget", "8", "--region-size", "16", "16", "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--out:" in err and f"in use by pid {owner.process.pid}" in err
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]
