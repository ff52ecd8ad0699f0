"""Checked downloads into a cache folder.

A file is fetched once, to a temporary name beside its destination, hashed while it
streams, and moved into place only when its SHA-256 matches (or, for a file without a
published checksum, recorded beside it on first download and checked on every later
use). An interrupted or corrupted download leaves nothing behind under the final name.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
import warnings
from pathlib import Path

from labkit.core.cache import atomic_open, atomic_write
from labkit.errors import ConfigError, DataError

__all__ = ["fetch", "sha256_file"]

#: Bytes read per chunk while streaming or hashing.
CHUNK = 1 << 20
#: Seconds before a stalled connection is given up.
TIMEOUT_S = 60.0


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def fetch(url: str, dest: str | os.PathLike[str], *, sha256: str | None = None) -> Path:
    """``dest``, downloaded from ``url`` unless already present and intact.

    Args:
        url: where the file lives (``https://`` or ``file://``).
        dest: the final path; its folder is created.
        sha256: the published checksum. Without one, the hash of the first download is
            written to ``dest + ".sha256"`` (with a warning) and later calls check it.

    Raises:
        DataError: the download failed, or the bytes do not match the checksum (the
            message gives both hashes and the URL); nothing is left at ``dest``.
    """
    dest = Path(dest)
    if sha256 is not None and (len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256)):
        raise ConfigError(f"sha256 must be 64 lowercase hex digits, got {sha256!r}")
    recorded = dest.with_name(dest.name + ".sha256")
    expected = sha256 or (recorded.read_text().strip() if recorded.is_file() else None)
    if dest.is_file():
        if expected is None or sha256_file(dest) == expected:
            return dest
        raise DataError(f"cached file {dest} does not match its checksum {expected}; delete it to "
                        f"download {url} again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, atomic_open(dest, "wb") as out:
            while chunk := response.read(CHUNK):
                h.update(chunk)
                out.write(chunk)
            got = h.hexdigest()
            if expected is not None and got != expected:
                raise DataError(f"checksum mismatch for {url}: expected sha256 {expected}, got {got}; "
                                f"the file was not kept")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DataError(f"could not download {url}: {exc}") from exc
    if expected is None:
        atomic_write(recorded, got + "\n")
        warnings.warn(f"{url} has no published checksum in labkit; recorded sha256 {got} in {recorded} "
                      "and later reads are checked against it", stacklevel=2)
    return dest
