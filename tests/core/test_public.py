"""labkit.core's lazy public surface: every name in __all__ resolves, nothing else does."""

from __future__ import annotations

import pytest

import labkit.core as core


def test_all_matches_the_lazy_table():
    assert sorted(core.__all__) == sorted(core._WHERE)
    for name in core.__all__:
        assert getattr(core, name) is not None


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        core.nope  # noqa: B018
