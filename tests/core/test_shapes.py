"""Shape annotations (labkit.core.shapes) are checked in the test run, and only there.

pyproject.toml's pytest options install jaxtyping's import hook on the modules listed in
``--jaxtyping-packages``, with ``labkit.core.check_shapes`` as the checker.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import subprocess
import sys
import tomllib

import jaxtyping
import numpy as np
import pytest
import torch
from beartype.roar import BeartypeCallHintParamViolation

from labkit.atoms import CSPDenoiser
from labkit.core import check_shapes, dopri5, rk4, rk4_step, shapes
from labkit.core.shapes import States, _has_shape
from labkit.dynamics import (
    GTFConfig,
    GTFTrainer,
    ShallowPLRNN,
    get_system,
    lyapunov_spectrum,
    poincare_section,
    reconstruction_data,
    valid_prediction_time,
)
from labkit.errors import ConfigError
from labkit.symmetry import (
    SpecialOrthogonalGroup,
    Vector,
    equivariance_error,
    frobenius_cosine,
    so,
)


def decay(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -y


def _instrumented(repo) -> list[str]:
    addopts = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["pytest"][
        "ini_options"]["addopts"]
    option = next(a for a in addopts.split() if a.startswith("--jaxtyping-packages="))
    *modules, checker = option.removeprefix("--jaxtyping-packages=").split(",")
    assert checker == "labkit.core.check_shapes"
    return modules


def test_a_wrongly_shaped_argument_raises():
    y0 = torch.tensor(1.0, dtype=torch.float64)  # no state axis
    with pytest.raises(jaxtyping.TypeCheckError, match="y0"):
        rk4(decay, y0, (0.0, 1.0), 0.1)
    with pytest.raises(jaxtyping.TypeCheckError, match="y0"):
        dopri5(decay, y0, [0.0, 1.0])
    # one time per trajectory must broadcast against the batch [3]
    with pytest.raises(jaxtyping.TypeCheckError, match="t"):
        rk4_step(decay, torch.zeros(5), torch.ones(3, 2), 0.1)
    rk4_step(decay, torch.zeros(3), torch.ones(3, 2), 0.1)  # one time per trajectory
    rk4_step(decay, torch.zeros(()), torch.ones(3, 2), 0.1)  # one time for all


def test_a_wrongly_shaped_return_value_raises():
    def grows(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y.expand(4, *y.shape)  # adds a batch axis the state did not have

    with pytest.raises(jaxtyping.TypeCheckError, match="return value"):
        rk4_step(grows, torch.zeros(()), torch.ones(2), 0.1)


def test_axis_names_bind_across_arguments():
    x = torch.randn(6, 3, dtype=torch.float64)
    g = SpecialOrthogonalGroup(3).sample(5, seed=0)  # 5 elements for 6 samples
    with pytest.raises(jaxtyping.TypeCheckError, match="g"):
        equivariance_error(lambda p: p, SpecialOrthogonalGroup(3), x, Vector(3), Vector(3), g=g)
    with pytest.raises(jaxtyping.TypeCheckError):
        frobenius_cosine(torch.eye(2), torch.eye(3))  # two [n, n] matrices of one n
    with pytest.raises(jaxtyping.TypeCheckError, match="coeffs"):
        so(3).exp(torch.zeros(4, 3, dtype=torch.long))  # coefficients are floats


def test_dynamics_functions_check_their_shapes():
    lorenz = get_system("Lorenz")
    with pytest.raises(jaxtyping.TypeCheckError, match="y0"):  # no state axis
        lyapunov_spectrum(lorenz.vector_field(), torch.tensor(1.0, dtype=torch.float64),
                          dt=0.01, time=1.0)
    # the samples' times and the trajectory's time axis bind: 100 samples, 99 times
    y = torch.randn(2, 100, 3, dtype=torch.float64)
    t = torch.linspace(0.0, 1.0, 99, dtype=torch.float64)
    with pytest.raises(jaxtyping.TypeCheckError, match="t"):
        poincare_section(y, t, normal=[0.0, 0.0, 1.0])
    # a NumPy forecast and a tensor truth of different lengths (SeriesLike takes both)
    with pytest.raises(jaxtyping.TypeCheckError, match="x_pred"):
        valid_prediction_time(torch.randn(50, 3, dtype=torch.float64), np.zeros((40, 3)),
                              dt=0.1, lyapunov_exponent=1.0)


def test_reconstruction_models_check_their_shapes():
    model = ShallowPLRNN(3, 4, seed=0, dtype=torch.float64)
    with pytest.raises(jaxtyping.TypeCheckError, match="z"):  # [K, B, M] expected
        model.stacked_step(dict(model.named_parameters()), torch.zeros(5, 3, dtype=torch.float64))
    with pytest.raises(jaxtyping.TypeCheckError, match="z0"):
        model.generate(torch.tensor(0.0, dtype=torch.float64), 5)
    trainer = GTFTrainer(reconstruction_data(n_steps=200, dt=0.01, n_test=0),
                         GTFConfig(hidden_dim=4, seq_len=10, batch_size=2, steps=1), seeds=2,
                         device="cpu")
    x = trainer.sample()
    predicted, forced = trainer.teacher_forced(x)
    assert predicted.shape == forced.shape == (2, 2, 10, 3)  # one step fewer than x
    with pytest.raises(jaxtyping.TypeCheckError, match="alpha"):  # one alpha per member
        trainer.teacher_forced(x, torch.ones(3))


def test_the_crystal_denoiser_checks_its_inputs():
    net = CSPDenoiser(layers=1, hidden=8, fourier=2, timesteps=10)
    species = torch.tensor([[8, 22, 0]])
    lattice, t = 4 * torch.eye(3)[None], torch.tensor([5])
    net(species, torch.rand(1, 3, 3), lattice, species > 0, t)
    with pytest.raises(jaxtyping.TypeCheckError, match="frac"):  # 2-d coordinates
        net(species, torch.rand(1, 3, 2), lattice, species > 0, t)
    with pytest.raises(jaxtyping.TypeCheckError, match="mask"):  # 4 atoms against 3
        net(species, torch.rand(1, 3, 3), lattice, torch.ones(1, 4, dtype=torch.bool), t)


def test_other_annotations_are_left_to_the_functions_own_validation():
    # on_divergence is a Literal: check_shapes leaves it to rk4, which raises ConfigError
    with pytest.raises(ConfigError, match="on_divergence must be 'flag' or 'raise'"):
        rk4(decay, torch.ones(2, dtype=torch.float64), (0.0, 1.0), 0.1,
            on_divergence="ignore")  # pyright: ignore[reportArgumentType]


def test_check_shapes_checks_shape_annotations_only():
    def f(n: int, y: States) -> States:
        return y

    # jaxtyping hands the checker resolved annotations (here they are strings)
    f.__annotations__ = {"n": int, "y": States, "return": States}
    checked = check_shapes(f)
    checked("not an int", torch.ones(2))  # pyright: ignore[reportArgumentType]
    with pytest.raises(BeartypeCallHintParamViolation, match="y"):
        checked(1, torch.tensor(1.0))


def test_unchecked_shapes_turns_the_check_off(unchecked_shapes):
    with pytest.raises(ConfigError, match=r"y0 must be a tensor \[\*batch, state\]"):
        rk4(decay, torch.tensor(1.0, dtype=torch.float64), (0.0, 1.0), 0.1)


def test_the_annotated_modules_are_instrumented(repo):
    """Every labkit module with shape annotations (it imports labkit.core.shapes or
    jaxtyping) is listed for the hook, so they are checked; the listed modules are wrapped
    in this run."""
    listed = set(_instrumented(repo))
    users = set()
    for path in sorted((repo / "labkit").rglob("*.py")):
        tree = ast.parse(path.read_text())
        if any(isinstance(node, ast.ImportFrom) and node.module in ("labkit.core.shapes",
                                                                    "jaxtyping")
               for node in ast.walk(tree)):
            users.add(".".join(path.relative_to(repo).with_suffix("").parts))
    # shapes defines the aliases and the checker; core's __init__ re-exports the checker
    users -= {"labkit.core.shapes", "labkit.core.__init__"}
    assert users - listed == set(), "add these modules to --jaxtyping-packages in pyproject.toml"
    assert "labkit.core.shapes" not in listed
    assert hasattr(rk4, "__wrapped__") and hasattr(frobenius_cosine, "__wrapped__")


def test_shape_annotations_resolve(repo):
    """jaxtyping's hook turns an annotation it cannot evaluate in the module's namespace
    (a name imported only under TYPE_CHECKING, a typo) into ``Any``, silently unchecked:
    every annotation of an instrumented module that names a shape must evaluate."""
    shape_names = set(shapes.__all__) | {"Bool", "Complex", "Float", "Int", "Shaped", "Tensor"}
    unresolved, checked = [], 0
    for name in _instrumented(repo):
        module = importlib.import_module(name)
        namespace = vars(module)
        functions = []
        for obj in list(namespace.values()):
            if getattr(obj, "__module__", None) != name:
                continue
            if inspect.isclass(obj):
                functions.append(obj)
                for member in vars(obj).values():
                    member = member.fget if isinstance(member, property) else member
                    functions.append(inspect.unwrap(getattr(member, "__func__", member)))
            elif inspect.isfunction(obj):
                functions.append(inspect.unwrap(obj))
        for fn in functions:
            for arg, annotation in getattr(fn, "__annotations__", {}).items():
                if not isinstance(annotation, str):
                    continue
                try:
                    checked += _has_shape(eval(annotation, namespace))
                except Exception:
                    if shape_names & set(re.findall(r"\w+", annotation)):
                        unresolved.append(f"{name}.{fn.__qualname__}: {arg}: {annotation}")
    assert not unresolved
    assert checked > 100


def test_users_pay_nothing():
    """Without the test run's hook nothing is wrapped, and a wrongly shaped argument meets
    the function's own validation."""
    code = (
        "import json, sys, torch\n"
        "from labkit.core import rk4\n"
        "from labkit.errors import ConfigError\n"
        "try:\n"
        "    rk4(lambda t, y: -y, torch.tensor(1.0), (0.0, 1.0), 0.1)\n"
        "except ConfigError as e:\n"
        "    err = str(e)\n"
        "print(json.dumps([hasattr(rk4, '__wrapped__'), err,"
        " 'beartype' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    wrapped, err, beartype_loaded = json.loads(out.stdout.splitlines()[-1])
    assert not wrapped
    assert err.startswith("y0 must be a tensor [*batch, state]")
    assert not beartype_loaded
