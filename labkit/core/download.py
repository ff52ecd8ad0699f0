"""Checked downloads into a cache folder.

Every file is fetched against a SHA-256 that the caller knows in advance: there is no
trust on first use. A file is fetched once, to a temporary name beside its destination,
hashed while it streams, and moved into place only when its SHA-256 matches. A file
already at the destination (a cache hit) is hashed again on every use and refused when
its bytes differ. An interrupted or corrupted download leaves nothing behind under the
final name.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from labkit.core.cache import atomic_open
from labkit.errors import ConfigError, DataError

__all__ = ["check_sha256", "fetch", "sha256_file"]

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


def check_sha256(sha256: object, *, what: str = "sha256") -> str:
    """``sha256`` if it is 64 lowercase hex digits.

    Raises:
        ConfigError: anything else (``None`` included), quoting the value.
    """
    if not isinstance(sha256, str) or len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ConfigError(f"{what} must be 64 lowercase hex digits, got {sha256!r}")
    return sha256


def fetch(url: str, dest: str | os.PathLike[str], *, sha256: str) -> Path:
    """``dest``, downloaded from ``url`` unless already present and intact.

    Args:
        url: where the file lives (``https://`` or ``file://``).
        dest: the final path; its folder is created.
        sha256: the file's known checksum (64 lowercase hex digits). It is required:
            labkit never downloads, or reads from its cache, a file whose checksum it
            was not told beforehand.

    Raises:
        ConfigError: ``sha256`` is missing or not 64 lowercase hex digits.
        DataError: the download failed, or the bytes do not match the checksum (the
            message names the file or URL and gives both hashes); nothing is left at
            ``dest`` by a failed download, and a cached file that does not match is
            refused, not used.
    """
    expected = check_sha256(sha256)
    dest = Path(dest)
    if dest.is_file():
        got = sha256_file(dest)
        if got == expected:
            return dest
        raise DataError(f"cached file {dest} does not match its checksum: expected sha256 {expected}, "
                        f"got {got}; delete it to download {url} again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, atomic_open(dest, "wb") as out:
            while chunk := response.read(CHUNK):
                h.update(chunk)
                out.write(chunk)
            got = h.hexdigest()
            if got != expected:
                raise DataError(f"checksum mismatch for {url}: expected sha256 {expected}, got {got}; "
                                f"the file was not kept")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DataError(f"could not download {url}: {exc}") from exc
    return dest
