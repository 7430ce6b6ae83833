"""One writer per output folder: ``train.py --out`` and ``evaluate.py --out`` hold ``<out>/.segal.lock``.

The lock is an advisory ``flock`` on that file, held for the whole command, so the kernel releases it the
moment its owner dies, even by kill -9: a stale lock file never blocks anyone, and the next command
takes it over (saying whose it was). The file names the owner (pid, host, command, start time) so a
refusal can say who holds the folder. Everything a command does to its folder (removing temporary files
that a killed writer left, updating the manifest) happens under the lock, so it never touches the files
of a live writer.

POSIX (``fcntl``); on a network file system without ``flock`` support the lock may not hold, and where
``fcntl`` does not exist (Windows) the owner is recorded but nothing is locked.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import sys
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".segal.lock"


class FolderBusy(RuntimeError):
    """Another live process writes to this folder."""


def _owner_text(owner: dict[str, Any]) -> str:
    if not owner:
        return "another process"
    return (
        f"pid {owner.get('pid')} on {owner.get('host')} ({owner.get('command', '?')}, "
        f"since {owner.get('started_at', '?')})"
    )


class FolderLock:
    """``with FolderLock(out, "evaluate.py"):`` -- the folder is this process's until the block ends.

    Raises :class:`FolderBusy` naming the owner when another live process holds it. ``previous`` is the
    owner recorded by a lock file whose process is gone (a killed run), or None.
    """

    def __init__(self, folder: str | os.PathLike, command: str) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.command = command
        self.previous: dict[str, Any] | None = None
        self._handle: IO[str] | None = None

    def _read_owner(self, handle: IO[str]) -> dict[str, Any]:
        handle.seek(0)
        try:
            owner = json.loads(handle.read() or "{}")
        except json.JSONDecodeError:
            return {}
        return owner if isinstance(owner, dict) else {}

    def acquire(self) -> FolderLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the whole command
        try:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = self._read_owner(handle)
            handle.close()
            raise FolderBusy(
                f"{self.folder} is in use by {_owner_text(owner)}: two commands writing one folder would "
                f"mix their files. Wait for it to finish, or use another --out. (The lock is released when "
                f"that process ends, even if it is killed; {self.path} itself is harmless.)"
            ) from None
        previous = self._read_owner(handle)
        self.previous = previous or None
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "command": self.command,
                    "argv": sys.argv,
                    "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                }
            )
        )
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        handle.seek(0)
        handle.truncate()  # an empty file: nobody holds the folder
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()

    def stale_note(self) -> str | None:
        """A line for the user when the previous owner left without releasing (killed), else None."""
        if not self.previous:
            return None
        return (
            f"{self.folder} was last written by {_owner_text(self.previous)}, which ended without finishing; continuing"
        )

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
