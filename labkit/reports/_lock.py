"""One writer per output folder: a lock file that names its holder.

The lock is an advisory ``flock`` on a small file beside the folder it guards, holding
the holder's PID, host and start time as JSON. The operating system releases a
``flock`` when its process dies, however it dies (SIGKILL included), so a lock can never
be left held by a dead run; what such a run leaves behind is the file with its holder
recorded, which the next holder reads back (:attr:`FolderLock.stale`) to report that the
previous writer died. ``flock`` rather than ``O_EXCL`` lock files because a stale
``O_EXCL`` file cannot be broken safely by two waiting processes at once.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from labkit.errors import ConfigError, FolderBusyError

__all__ = ["FolderLock", "lock_path"]


def lock_path(folder: Path) -> Path:
    """The lock file of ``folder``: ``.<name>.lock`` beside it (it outlives swaps of the
    folder itself)."""
    return folder.parent / f".{folder.name}.lock"


class FolderLock:
    """An exclusive lock on ``folder``; use :meth:`acquire` / :meth:`release` or ``with``.

    Attributes:
        stale: after a successful :meth:`acquire`, the holder recorded by a previous writer
            that died without releasing (PID, host, start), else ``None``.
    """

    def __init__(self, folder: str | os.PathLike[str], *, what: str = "folder") -> None:
        self.folder = Path(folder)
        self.path = lock_path(self.folder)
        self.what = what
        self.stale: dict[str, Any] | None = None
        self._fd: int | None = None

    def holder(self) -> dict[str, Any] | None:
        """Who the lock file names (the current holder while it is held), if anyone."""
        try:
            text = self.path.read_text()
        except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError):
            return None
        with contextlib.suppress(json.JSONDecodeError):
            info = json.loads(text)
            return info if isinstance(info, dict) else None
        return None

    def is_held(self) -> bool:
        """Whether some live process holds the lock now (this object excluded)."""
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def acquire(self, *, wait: float = 0.0, poll: float = 0.2) -> None:
        """Take the lock, waiting up to ``wait`` seconds (``inf``: until it is free).

        Raises:
            FolderBusyError: another process holds it; the message names that process.
            ConfigError: the lock file cannot be created (a read-only folder).
        """
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this object")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise ConfigError(f"cannot create the lock file {self.path}: {exc.strerror}; "
                              f"expected a writable folder") from exc
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise FolderBusyError(self._busy_message()) from None
                time.sleep(poll)
        previous = os.read(fd, 1 << 16)
        try:
            info = json.loads(previous) if previous.strip() else None
        except json.JSONDecodeError:
            info = None
        self.stale = info if isinstance(info, dict) else None
        mine = {"pid": os.getpid(), "host": platform.node(),
                "since": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(mine).encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (the file stays, emptied, so that no waiter races a deletion)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def _busy_message(self) -> str:
        info = self.holder() or {}
        who = (f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"
               if info else "another process")
        return (f"{self.what} {str(self.folder)!r} is being written by {who}; wait for it to "
                f"finish or choose another output folder")

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
