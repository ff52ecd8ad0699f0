"""Atomic file writes and a content-addressed file cache.

Everything labkit writes to disk (reports, ``run.json``, sweep results, cached arrays,
downloads) goes through :func:`atomic_write` or :func:`atomic_open`: the data land in
a temporary file in the same folder, are flushed to disk, and replace the target in one
``os.replace``. A reader sees the old file or the new one, never half of one, and an
interrupted run leaves no truncated file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from labkit.errors import ConfigError

__all__ = ["FileCache", "atomic_open", "atomic_write", "default_cache_dir", "stable_hash"]


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically.

    If the body raises, the temporary file is removed and ``path`` is left untouched.
    ``mode`` is ``"w"`` (text, UTF-8 unless ``encoding`` is given) or ``"wb"``.
    """
    if mode not in ("w", "wb"):
        raise ConfigError(f"atomic_open mode must be 'w' or 'wb', got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode == "w":
        kwargs.setdefault("encoding", "utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` (text or bytes) to ``path`` atomically and return the path."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w") as fh:
        fh.write(data)
    return Path(path)


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hex SHA-256 of ``obj``'s canonical JSON (sorted keys), cut to ``length`` characters.

    Equal dictionaries give equal hashes whatever their key order; ``1`` and ``1.0``
    differ, as they do as notebook parameters.
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def default_cache_dir() -> Path:
    """``$LABKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/labkit``, else ``~/.cache/labkit``."""
    if env := os.environ.get("LABKIT_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "labkit"


class FileCache:
    """A folder of files named by the hash of a key; writes are atomic.

    >>> import tempfile
    >>> cache = FileCache(tempfile.mkdtemp())
    >>> cache.get_or_create({"system": "lorenz", "n": 3}, lambda: b"data")
    b'data'
    >>> cache.get({"system": "lorenz", "n": 3})
    b'data'
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, key: Any, suffix: str = ".bin") -> Path:
        """Where the entry for ``key`` lives (it may not exist yet)."""
        return self.root / f"{stable_hash(key)}{suffix}"

    def get(self, key: Any, suffix: str = ".bin") -> bytes | None:
        """The stored bytes for ``key``, or ``None`` when there is no entry."""
        try:
            return self.path(key, suffix).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: Any, data: bytes, suffix: str = ".bin") -> Path:
        """Store ``data`` under ``key`` atomically."""
        return atomic_write(self.path(key, suffix), data)

    def get_or_create(self, key: Any, create: Callable[[], bytes], suffix: str = ".bin") -> bytes:
        """The entry for ``key``, calling ``create()`` and storing its bytes when missing."""
        data = self.get(key, suffix)
        if data is None:
            data = create()
            if not isinstance(data, bytes):
                raise ConfigError(f"create() must return bytes, got {type(data).__name__}")
            self.put(key, data, suffix)
        return data
