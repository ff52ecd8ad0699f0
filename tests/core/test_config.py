from dataclasses import dataclass

import pytest

from labkit.core import Config, check_in, check_positive, check_range
from labkit.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class Demo(Config):
    steps: int = 10
    dt: float = 0.01
    method: str = "rk4"
    window: tuple[float, float] = (0.0, 1.0)
    label: str | None = None

    def validate(self) -> None:
        check_positive("steps", self.steps)
        check_positive("dt", self.dt)
        check_in("method", self.method, ["rk4", "dopri5"])


def test_defaults_and_replace():
    cfg = Demo()
    assert cfg.replace(steps=4).steps == 4
    assert cfg.steps == 10  # frozen: replace makes a copy
    with pytest.raises(AttributeError):
        cfg.steps = 3  # type: ignore[misc]


def test_int_for_float_and_list_for_tuple_are_normalised():
    cfg = Demo(dt=1, window=[0, 2.5])
    assert isinstance(cfg.dt, float) and cfg.dt == 1.0
    assert cfg.window == (0, 2.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "steps must be > 0, got 0"),
        ({"steps": 2.5}, "Demo.steps must be int, got 2.5"),
        ({"steps": True}, "Demo.steps must be int, got True"),
        ({"dt": "fast"}, "Demo.dt must be float, got 'fast'"),
        ({"method": "euler"}, "method must be one of ['rk4', 'dopri5'], got 'euler'"),
        ({"label": 3}, "Demo.label must be"),
        ({"window": (0.0, "x")}, "Demo.window must be"),
    ],
)
def test_bad_values_are_named(kwargs, message):
    with pytest.raises(ConfigError) as info:
        Demo(**kwargs)
    assert message in str(info.value)


def test_from_dict_rejects_unknown_keys_by_name():
    assert Demo.from_dict({"steps": 3}).steps == 3
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['stepz'\].*valid fields"):
        Demo.from_dict({"stepz": 3})
    with pytest.raises(ConfigError, match="stepz"):
        Demo().replace(stepz=1)


def test_to_dict_roundtrip():
    cfg = Demo(steps=5, label="a")
    assert Demo.from_dict(cfg.to_dict()) == cfg


def test_range_check():
    check_range("p", 0.5, 0, 1)
    with pytest.raises(ConfigError, match=r"p must be in \[0, 1\], got 2"):
        check_range("p", 2, 0, 1)
    with pytest.raises(ConfigError, match="finite"):
        check_positive("x", float("nan"))
