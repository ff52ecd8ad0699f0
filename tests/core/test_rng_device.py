import pytest
import torch

from labkit.core import make_generator, numpy_rng, resolve_device, spawn_seeds
from labkit.core.device import describe_device
from labkit.errors import ConfigError


def test_same_seed_same_numbers_and_global_state_untouched():
    before = torch.random.get_rng_state()
    a = torch.randn(5, generator=make_generator(7))
    b = torch.randn(5, generator=make_generator(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, torch.randn(5, generator=make_generator(8)))
    assert torch.equal(before, torch.random.get_rng_state())


def test_generator_passes_through():
    gen = make_generator(1)
    assert make_generator(gen) is gen


def test_unseeded_generators_differ():
    a = torch.randn(4, generator=make_generator(None))
    b = torch.randn(4, generator=make_generator(None))
    assert not torch.equal(a, b)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_seed(bad):
    with pytest.raises(ConfigError, match="seed must be a non-negative int"):
        make_generator(bad)


def test_spawned_seeds_are_distinct_and_reproducible():
    seeds = spawn_seeds(3, 10)
    assert len(set(seeds)) == 10
    assert seeds == spawn_seeds(3, 10)
    assert numpy_rng(1).random() == numpy_rng(1).random()


def test_device_resolution():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert describe_device()["device"].startswith(expected)
    with pytest.raises(ConfigError, match="'gpu0'"):
        resolve_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="only meaningful without CUDA")
def test_cuda_request_without_cuda_is_a_clear_error():
    with pytest.raises(ConfigError, match="no CUDA device is available"):
        resolve_device("cuda")


@pytest.mark.gpu
def test_cuda_generator_on_gpu():
    gen = make_generator(0, device="cuda")
    assert torch.randn(3, generator=gen, device="cuda").device.type == "cuda"


def test_uniform_and_linear_layer_draw_from_the_generator_only():
    import torch

    from labkit.core import linear_layer, make_generator, uniform

    torch.manual_seed(123)
    a = linear_layer(5, 3, make_generator(7), dtype=torch.float64)
    torch.manual_seed(999)  # the global state plays no part
    b = linear_layer(5, 3, make_generator(7), dtype=torch.float64)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert a.weight.abs().max() <= 5 ** -0.5 and a.weight.shape == (3, 5)
    c = linear_layer(5, 3, make_generator(7))  # float32: the same draws, rounded
    assert c.weight.dtype == torch.float32
    torch.testing.assert_close(c.weight.double(), a.weight, rtol=1e-7, atol=1e-7)
    w = uniform((1000,), 0.5, make_generator(1))
    assert w.dtype == torch.float64 and -0.5 <= float(w.min()) and float(w.max()) < 0.5
    assert abs(float(w.mean())) < 0.05
