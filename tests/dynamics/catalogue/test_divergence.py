import pytest
import torch

from labkit.core import rk4
from labkit.dynamics import get_system, lorenz, separation_rate
from labkit.errors import ConfigError, DivergenceError


def test_linear_growth_rate_is_exact():
    lam = 0.7
    y0 = torch.tensor([[1.0, 0.0], [1.001, 0.0], [1.0, 0.002]], dtype=torch.float64)
    traj = rk4(lambda t, y: lam * y, y0, (0.0, 5.0), 0.01)
    assert separation_rate(traj, 1.0, 4.0) == pytest.approx(lam, rel=1e-8)


def test_lorenz_rate_near_literature_value():
    system = get_system("Lorenz")
    gen = torch.Generator().manual_seed(0)
    y0 = system.default_state()
    y0 = y0 + 1e-9 * torch.randn(32, 3, generator=gen, dtype=torch.float64)
    traj = rk4(lorenz, y0, (0.0, 18.0), 0.005, save_every=4)  # the catalogue's parameters
    # A finite-time estimate from 31 neighbours: within 10% of Sprott's 0.9056.
    published = system.reference["maximum_lyapunov_published"]
    assert separation_rate(traj, 2.0, 16.0) == pytest.approx(published, rel=0.10)


def test_errors():
    y0 = torch.ones(2, 2, dtype=torch.float64)
    traj = rk4(lambda t, y: y, y0, (0.0, 1.0), 0.1)
    with pytest.raises(ConfigError, match="coincide"):
        separation_rate(traj, 0.1, 0.9)
    with pytest.raises(ConfigError, match="t_min < t_max"):
        separation_rate(traj, 0.9, 0.1)
    blow = rk4(lambda t, y: y**2, torch.tensor([[0.5], [0.6]], dtype=torch.float64), (0.0, 3.0), 1e-2)
    with pytest.raises(DivergenceError):
        separation_rate(blow, 0.0, 1.0)
