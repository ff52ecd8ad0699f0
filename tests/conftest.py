"""Shared test configuration.

GPU tests (``@pytest.mark.gpu``) are deselected when no CUDA device is present; they
are never required. Everything else runs on CPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("gpu") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``):
    small models run fastest so on this 2-core machine, and CPU-s are then comparable."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def unchecked_shapes():
    """Turn off the test run's shape checks (labkit.core.shapes) for one test.

    For tests of a function's own validation of a wrongly shaped argument: users get that
    validation's error, but under pytest the shape annotation would raise first."""
    import jaxtyping

    jaxtyping.config.update("jaxtyping_disable", True)
    yield
    jaxtyping.config.update("jaxtyping_disable", False)


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets beside the repository (``../shared/data``, or
    ``$LABKIT_SHARED_DATA``). Missing data fail the test: they never skip it."""
    import os

    path = Path(os.environ.get("LABKIT_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.fail(f"shared data not found at {path}; set LABKIT_SHARED_DATA")
    return path
