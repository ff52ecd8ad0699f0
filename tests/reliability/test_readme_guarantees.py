"""The README's "Reports and sweeps" guarantees name the tests that hold them: every named
test exists in ``tests/reliability/`` (a renamed or deleted test breaks this, not silently
the promise)."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).parent


def test_every_test_named_by_the_readme_exists(repo):
    text = (repo / "README.md").read_text()
    section = text[text.index("## Reports and sweeps"):]
    section = section[: section.index("\n## ", 3)]
    files = set(re.findall(r"`(test_\w+\.py)`", section))
    functions = set(re.findall(r"`(test_\w+)`", section))
    assert len(files) >= 5 and len(functions) >= 12
    sources = {p.name: p.read_text() for p in HERE.glob("test_*.py")}
    assert files <= set(sources), files - set(sources)
    defined = {m for src in sources.values() for m in re.findall(r"^def (test_\w+)", src, re.M)}
    assert functions <= defined, functions - defined
