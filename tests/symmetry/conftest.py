"""Shared data for the symmetry tests."""

from __future__ import annotations

import math

import pytest
import torch

from labkit.symmetry import SymmetryData


@pytest.fixture(scope="session")
def pinwheel():
    """A chiral four-armed pinwheel in the plane: four elongated Gaussian blobs at radius 3,
    each tilted 30 degrees off the radius. Its law is invariant under quarter turns only
    (a reflection flips the tilt)."""
    gen = torch.Generator().manual_seed(0)
    n = 2000
    local = torch.randn(n, 2, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 0.25], dtype=torch.float64)
    tilt = math.radians(30.0)
    arm = torch.tensor([[math.cos(tilt), -math.sin(tilt)], [math.sin(tilt), math.cos(tilt)]], dtype=torch.float64)
    blob = local @ arm.T + torch.tensor([3.0, 0.0], dtype=torch.float64)
    k = torch.randint(0, 4, (n,), generator=gen)
    c, s = torch.cos(k * math.pi / 2).to(torch.float64), torch.sin(k * math.pi / 2).to(torch.float64)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2).round()
    return SymmetryData.from_array(torch.einsum("bij,bj->bi", rot, blob), name="pinwheel", kind="discrete")
