"""Where a result came from: the git state of the code that produced it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

__all__ = ["git_state"]


def git_state(where: str | Path) -> dict[str, Any]:
    """``{"commit": sha, "dirty": bool}`` of the git checkout holding ``where``; both
    ``None`` when there is no checkout (an installed wheel) or git is missing. ``dirty``
    counts changes to tracked files only."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=where, capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": head, "dirty": bool(dirty)}
