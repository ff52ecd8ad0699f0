"""The Python blocks of docs/*.md run as written (the API conventions' worked example)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _blocks() -> list[tuple[str, int, str]]:
    out = []
    for path in sorted(DOCS.glob("*.md")):
        for n, code in enumerate(BLOCK.findall(path.read_text())):
            out.append((path.name, n, code))
    return out


@pytest.mark.parametrize(("name", "n", "code"), _blocks(), ids=lambda v: str(v)[:30])
def test_python_blocks_in_docs_run(name, n, code, one_thread, monkeypatch):
    module = types.ModuleType(f"labkit_docs_{n}")  # dataclasses look their module up
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, f"{name}[{n}]", "exec"), module.__dict__)


def test_the_conventions_document_has_its_example():
    assert any(name == "api-conventions.md" for name, _, _ in _blocks())
