"""labkit's docstrings and comments cite only what is in the repository: every path they
name exists, and nothing points at notes kept outside it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: A repository path as docstrings write it (``docs/x.md``, ``tests/core/test_y.py``, ...).
PATH = re.compile(r"(?<![\w/.])((?:docs|bench|tests|notebooks|widgets|labkit)/[\w./-]+"
                  r"\.(?:md|py|ipynb|json|js|css|sh))(?![\w])")
#: Files outside the repository that earlier docstrings cited.
OUTSIDE = re.compile(r"FIELD-NOTES|PAPERS\.md|\.\./shared")


def _sources() -> list[Path]:
    return sorted(p for p in (REPO / "labkit").rglob("*.py") if "__pycache__" not in p.parts)


def test_every_cited_path_exists():
    missing = [f"{p.relative_to(REPO)}: {m}" for p in _sources()
               for m in PATH.findall(p.read_text()) if not (REPO / m).exists()]
    assert not missing, "docstrings cite files that are not in the repository:\n" + \
        "\n".join(missing)


def test_nothing_points_outside_the_repository():
    found = [f"{p.relative_to(REPO)}:{n}: {line.strip()}" for p in _sources()
             for n, line in enumerate(p.read_text().splitlines(), 1) if OUTSIDE.search(line)]
    assert not found, "\n".join(found)


def test_the_checks_would_catch_a_bad_citation():
    assert PATH.findall("see docs/nowhere.md and tests/core/test_integrate.py") == [
        "docs/nowhere.md", "tests/core/test_integrate.py"]
    assert OUTSIDE.search("(FIELD-NOTES, Symmetry)")
