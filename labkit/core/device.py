"""Device choice: CUDA when present, else the CPU. Never required."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labkit.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["default_device", "describe_device", "resolve_device"]


def default_device() -> torch.device:
    """``cuda`` when a CUDA device is available, otherwise ``cpu``."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"``/``None``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a device into a device.

    Raises:
        ConfigError: for an unknown name, or for CUDA when no CUDA device is present.
    """
    import torch

    if spec is None or spec == "auto":
        return default_device()
    try:
        dev = torch.device(spec)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {spec!r}"
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {spec!r} was asked for but no CUDA device is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {spec!r} does not exist: {torch.cuda.device_count()} CUDA device(s)"
            )
    elif dev.type != "cpu":
        raise ConfigError(f"device must be a CPU or CUDA device, got {spec!r}")
    return dev


def describe_device() -> dict[str, Any]:
    """What :func:`default_device` picks, with the GPU's name and memory when there is one,
    torch's CPU threads, and the compiled kernels' compiler and thread limit (reports
    record this in ``run.json``)."""
    import torch

    dev = default_device()
    info: dict[str, Any] = {"device": str(dev), "torch": torch.__version__}
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info.update(name=props.name, memory_gib=round(props.total_memory / 2**30, 1))
    else:
        info.update(name="cpu", threads=torch.get_num_threads())
    from labkit.core.kernels import kernel_status

    info["kernels"] = kernel_status()  # compiler, cache, most threads a kernel call takes
    return info
