"""A user's own flow as a System (custom_system): the same field, step and Jacobian as the
catalogue's where it is the catalogue's system written by hand, parameter batches in
either convention, and a ConfigError naming the field for every bad input."""

from __future__ import annotations

import pytest
import torch

from labkit.core import rk4
from labkit.dynamics import System, custom_system, get_system, lorenz
from labkit.errors import ConfigError

Y0 = [1.0, 2.0, 20.0]


def lorenz96(t, y, F=8.0):
    """Lorenz-96 written on the whole last axis (a parameter batch needs a trailing axis)."""
    return (torch.roll(y, -1, -1) - torch.roll(y, 2, -1)) * torch.roll(y, 1, -1) - y + F


def test_the_catalogues_lorenz_by_hand_is_the_catalogues_lorenz():
    own = custom_system(lorenz, y0=Y0, parameters={"sigma": 10.0, "rho": 28.0, "beta": 8 / 3})
    ref = get_system("Lorenz")
    assert isinstance(own, System) and own.kind == "flow" and own.dim == 3
    assert own.name == "lorenz (own)"  # named after the function, never as the catalogue's
    gen = torch.Generator().manual_seed(0)
    y = ref.default_state() + torch.randn(64, 3, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(own.rhs(0.0, y), ref.rhs(0.0, y), rtol=1e-15, atol=1e-12)
    torch.testing.assert_close(own.rhs(0.0, y, rho=15.0), ref.rhs(0.0, y, rho=15.0))
    # Autograd Jacobian of the user's field against dysts' analytic one.
    torch.testing.assert_close(own.jacobian(0.0, y), ref.jacobian(0.0, y, method="analytic"),
                               rtol=1e-12, atol=1e-12)
    # Integrated eagerly (no compiled kernel), it follows the catalogue's compiled run.
    a = rk4(own.vector_field(), y[:4], (0.0, 1.0), 0.005)
    b = rk4(ref.vector_field(), y[:4], (0.0, 1.0), 0.005)
    torch.testing.assert_close(a.y, b.y, rtol=1e-9, atol=1e-9)
    assert own.default_state().tolist() == Y0 and own.period is None and own.dt == 0.01


def test_a_parameter_batch_reaches_a_field_written_on_the_whole_last_axis():
    own = custom_system(lorenz96, y0=[8.0, 8.0, 8.0, 8.0, 8.01], parameters={"F": 8.0},
                        name="ring5")
    forcing = torch.linspace(2.0, 12.0, 6, dtype=torch.float64)
    y = torch.randn(6, 3, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    batched = own.rhs(0.0, y, F=forcing[:, None])  # the catalogue's convention
    for i, f in enumerate(forcing):
        torch.testing.assert_close(batched[i], lorenz96(0.0, y[i], F=float(f)))
    assert own.name == "ring5" and own.parameters == {"F": 8.0}
    assert own.variables == ("x0", "x1", "x2", "x3", "x4")


def _boom(t, y):
    raise ZeroDivisionError("no field here")


@pytest.mark.parametrize(("args", "match"), [
    ({"f": 3, "dim": 3}, "f must be a callable f\\(t, y\\) -> dy/dt, got 3"),
    ({"f": _boom, "dim": 3}, "the vector field '_boom' .* failed on a state of shape "
                             "\\[batch, 3\\]: ZeroDivisionError: no field here"),
    ({"f": lambda t, y: y[..., :2], "dim": 3},
     "the vector field 'custom' must return a tensor of the state's shape \\(1, 3\\), "
     "got \\(1, 2\\)"),
    ({"f": lambda t, y: 1.0, "dim": 3}, "must return a tensor .* got float"),
    ({"f": lambda t, y: y.sum(0, keepdim=True).expand_as(y), "dim": 2}, "mixes the batch"),
    ({"f": lambda t, y: y / 0.0, "y0": [1.0, 1.0]}, "is not finite at y0 = \\[1.0, 1.0\\]"),
    ({"f": lorenz}, "give the state's dimension \\(dim=...\\) or an initial state"),
    ({"f": lorenz, "dim": 3, "y0": [1.0, 2.0]}, "y0 has 2 values but dim is 3"),
    ({"f": lorenz, "y0": [1.0, float("nan"), 0.0]}, "y0 must be a non-empty sequence of finite"),
    ({"f": lorenz, "dim": 3, "dt": 0.0}, "dt must be a number > 0, got 0.0"),
    ({"f": lorenz, "dim": 3, "period": -1.0}, "period must be a number > 0 or None, got -1.0"),
    ({"f": lorenz, "dim": 3, "name": "Rossler"}, "the name 'Rossler' is the catalogue's Rossler"),
    ({"f": lorenz, "dim": 3, "parameters": {"rho": "28"}}, "parameter 'rho' must be a finite"),
    ({"f": lorenz, "dim": 3, "variables": ["x", "y"]}, "variables must be 3 names"),
])
def test_bad_input_is_a_config_error_naming_it(args, match):
    args = dict(args)
    f = args.pop("f")
    with pytest.raises(ConfigError, match=match):
        custom_system(f, **args)
