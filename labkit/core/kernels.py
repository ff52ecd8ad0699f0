"""Compiled integration kernels: a traced right-hand side, printed as C, built once.

A vector field that carries a :class:`KernelSource` (every catalogue system's
``vector_field()`` does) can be integrated by a fused C kernel instead of eager torch:
:func:`labkit.core.rk4`, :meth:`System.iterate` and
:func:`labkit.dynamics.lyapunov_spectrum` use it on the CPU by default (``fast="auto"``).

- **Build once, cache on disk.** The C source (:mod:`labkit.core._cgen`) is compiled by
  the system's C compiler (``$LABKIT_CC``, else ``$CC``, else ``cc``) into a shared
  library under ``<cache dir>/kernels/``, named by the hash of the source, the compiler's
  version and the flags. It is written atomically, so concurrent processes can build the
  same kernel safely. A later process loads it in about a millisecond.
- **Fallback.** Without a working compiler (or with ``LABKIT_CC=none``) the integrators
  run eagerly, after one :class:`RuntimeWarning` per process naming the reason.
- **Threads.** A call splits its trajectories over :func:`kernel_threads` threads, each a
  ctypes call that releases the GIL; small calls stay on one thread.
- **Other devices (CUDA).** :func:`torch_step` prints the same tape as one straight-line
  torch function (:mod:`labkit.core._torchgen`) and, on request, compiles the whole RK4
  step with ``torch.compile`` (inductor: one Triton kernel per step on CUDA, C++ on the
  CPU). :func:`labkit.core.rk4` uses it for CUDA tensors and replays it in a CUDA graph.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import hashlib
import inspect
import math
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from labkit.core._cgen import kernel_source
from labkit.core._tape import Traced, TraceError
from labkit.core.cache import default_cache_dir

__all__ = ["KernelSource", "compiler", "kernel_for", "kernel_status", "kernel_threads",
           "torch_step"]

#: Flags of every build: optimized, IEEE arithmetic kept (no fused multiply-add, no
#: fast-math), position independent.
CFLAGS = ("-O3", "-march=native", "-fopenmp-simd", "-fPIC", "-shared", "-ffp-contract=off",
          "-fno-math-errno", "-std=c99")
#: Trajectory-steps below which a call stays on one thread (measured on the 2-core CI
#: machine: a second thread pays for itself from about 2e5 Lorenz RK4 trajectory-steps).
MIN_WORK_PER_THREAD = 200_000

_C_DTYPES = {torch.float64: "double", torch.float32: "float"}
_lock = threading.Lock()
_warned: set[str] = set()


@dataclasses.dataclass(frozen=True)
class KernelSource:
    """What a vector field carries so that integrators can compile it.

    Attributes:
        traced: a function returning the traced right-hand side (or a reason it has none).
        params: ``params(y)`` -> the parameter slots, ``[*batch, P]`` or ``[P]``, in
            ``y``'s dtype; raises :class:`TraceError` for parameters the kernel cannot take.
        kind: ``"flow"`` or ``"map"``.
        key: names the right-hand side and the code that traces and prints it (a version
            of each); a kernel built once is then found by its key in later processes
            without tracing (so without importing the code it was traced from).
    """

    traced: Callable[[], Traced | str]
    params: Callable[[torch.Tensor], torch.Tensor]
    kind: str = "flow"
    key: str | None = None


def compiler() -> str | None:
    """The C compiler the kernels are built with, or None (``LABKIT_CC=none``, or none on
    the PATH)."""
    name = os.environ.get("LABKIT_CC") or os.environ.get("CC") or "cc"
    if name.lower() == "none":
        return None
    return shutil.which(name) or (name if os.path.isabs(name) and os.access(name, os.X_OK)
                                  else None)


@functools.cache
def _compiler_id(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.splitlines()[0] if out.stdout else cc
    except (OSError, subprocess.SubprocessError):
        return cc


class _Library:
    """A loaded kernel library and its two entry points."""

    def __init__(self, path: Path) -> None:
        lib = ctypes.CDLL(str(path))
        p, i64 = ctypes.c_void_p, ctypes.c_int64
        self.integrate = lib.lk_integrate
        self.integrate.restype = None
        self.integrate.argtypes = [i64, i64, ctypes.c_int, p, p, i64, ctypes.c_double,
                                   ctypes.c_double, i64, p, p, p, p, p, p, p]
        self.lyapunov = lib.lk_lyapunov
        self.lyapunov.restype = None
        self.lyapunov.argtypes = [i64, i64, ctypes.c_int, p, p, i64, ctypes.c_double,
                                  ctypes.c_double, i64, i64, i64, i64, p, p, p, p, p]
        self.dopri5 = lib.lk_dopri5
        self.dopri5.restype = None
        self.dopri5.argtypes = [i64, i64, p, p, i64, p, i64, ctypes.c_double, ctypes.c_double,
                                ctypes.c_double, i64, p, p, p, p, p]
        self.path = path


@functools.cache
def _cpu_id() -> str:
    """The processor's model and instruction-set flags: kernels are built with
    ``-march=native``, so a cache shared between machines must not mix them."""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    keep = [line for line in info if line.startswith(("model name", "flags", "Features"))]
    return "\n".join(dict.fromkeys(keep)) or platform.machine()


def _build(source: str, cc: str) -> Path:
    key = hashlib.sha256("\0".join([source, _compiler_id(cc), " ".join(CFLAGS),
                                    platform.machine(), _cpu_id()]).encode()).hexdigest()[:24]
    folder = default_cache_dir() / "kernels"
    target = folder / f"lk_{key}.so"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as tmp:
        c_file = Path(tmp) / "kernel.c"
        c_file.write_text(source)
        so_file = Path(tmp) / "kernel.so"
        proc = subprocess.run([cc, *CFLAGS, "-o", str(so_file), str(c_file), "-lm"],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"{cc} failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
        os.replace(so_file, target)  # atomic: a concurrent build of the same key is identical
    return target


@functools.cache
def _load(traced_id: int, traced: Traced, real: str) -> _Library:
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler (set LABKIT_CC or CC, or install gcc)")
    return _Library(_build(kernel_source(traced, real), cc))


def _warn_once(reason: str) -> None:
    with _lock:
        if reason in _warned:
            return
        _warned.add(reason)
    warnings.warn(f"labkit: compiled integration unavailable ({reason}); integrating with "
                  "eager torch, which is 10-100x slower", RuntimeWarning, stacklevel=4)


def kernel_for(source: KernelSource | None, y: torch.Tensor) -> tuple[_Library, torch.Tensor] | None:
    """The compiled kernel for ``source`` at ``y``'s dtype, with the parameter slots; None
    when it cannot be used here (no source, CUDA or another dtype, a system that does not
    trace, batched vector parameters, or no compiler: the last warns once)."""
    if source is None or y.device.type != "cpu" or y.dtype not in _C_DTYPES:
        return None
    try:
        params = source.params(y)
    except TraceError:
        return None
    real = _C_DTYPES[y.dtype]
    lib = _by_key(source.key, real) if source.key else None
    if lib is not None:
        return lib, params
    traced = source.traced()
    if isinstance(traced, str):
        return None
    try:
        lib = _load(id(traced), traced, real)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        _warn_once(str(exc).splitlines()[0])
        return None
    if source.key:
        _remember(source.key, real, lib)
    return lib, params


_libraries: dict[tuple[str, str], _Library] = {}


def _index_path(key: str, real: str) -> Path | None:
    cc = compiler()
    if cc is None:
        return None
    try:
        stamp = f"{cc}:{os.stat(cc).st_mtime_ns}"
    except OSError:
        return None
    digest = hashlib.sha256("\0".join([key, real, " ".join(CFLAGS), platform.machine(),
                                       _cpu_id(), stamp]).encode()).hexdigest()[:24]
    return default_cache_dir() / "kernels" / f"ix_{digest}.so"


def _by_key(key: str, real: str) -> _Library | None:
    """The kernel built earlier for ``key``, from this process or the disk cache."""
    if (key, real) in _libraries:
        return _libraries[(key, real)]
    path = _index_path(key, real)
    if path is None or not path.exists():
        return None
    try:
        lib = _Library(path)
    except OSError:  # a damaged file: rebuild it
        return None
    _libraries[(key, real)] = lib
    return lib


def _remember(key: str, real: str, lib: _Library) -> None:
    """File ``lib`` under ``key`` (a copy beside it, replaced atomically)."""
    _libraries[(key, real)] = lib
    path = _index_path(key, real)
    if path is None or path.exists():
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ix-", suffix=".so")
    os.close(fd)
    try:
        shutil.copyfile(lib.path, tmp)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


_torch_functions: dict[str, Callable[..., torch.Tensor]] = {}


def torch_step(source: KernelSource | None, y: torch.Tensor, dt: float, *,
               method: str = "rk4", compile: bool = False) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """One step ``step(t, y)`` (``method`` ``"rk4"`` or ``"euler"``) of the field ``source`` describes, as straight-line torch
    on ``y``'s device (compiled by ``torch.compile`` when ``compile``); None when the
    system does not trace or its parameters are batched in a way the tape does not take.

    Raises:
        RuntimeError: ``compile`` was asked for and ``torch.compile`` failed here.
    """
    from labkit.core._torchgen import TorchField, torch_function
    from labkit.core.integrate import euler_step, rk4_step

    # torch.compile traces the step itself: in the test run jaxtyping's import hook wraps
    # rk4_step/euler_step in a shape check (labkit.core.shapes) that dynamo cannot trace.
    one_step = inspect.unwrap({"rk4": rk4_step, "euler": euler_step}[method])

    if source is None:
        return None
    try:
        params = source.params(y).to(device=y.device, dtype=y.dtype)
    except TraceError:
        return None
    traced = None
    function = _torch_functions.get(source.key) if source.key else None
    if function is None:
        traced = source.traced()
        if isinstance(traced, str):
            return None
        function = torch_function(traced)
        if source.key:
            _torch_functions[source.key] = function
    field = TorchField(function, params, source.key or getattr(traced, "name", "field"))

    def step(t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return one_step(field, t, state, dt)

    if not compile:
        return step
    compiled = torch.compile(step, fullgraph=True, dynamic=False)
    try:  # compile now, so that a failure is reported here rather than mid-integration
        with torch.no_grad():
            compiled(torch.zeros((), dtype=y.dtype, device=y.device), y)
    except Exception as exc:  # inductor raises many types (BackendCompilerFailed, ...)
        raise RuntimeError(f"torch.compile of the {method} step failed: {exc}") from exc
    return compiled


def kernel_status() -> dict[str, Any]:
    """The compiler, the kernel cache folder and the thread policy, for run records."""
    cc = compiler()
    return {"compiler": _compiler_id(cc) if cc else None,
            "cache": str(default_cache_dir() / "kernels"),
            "threads": kernel_threads(math.inf)}


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def kernel_threads(work: float) -> int:
    """Threads for a kernel call of ``work`` trajectory-steps: one per
    :data:`MIN_WORK_PER_THREAD`, at most the cores this process may use
    (``$LABKIT_KERNEL_THREADS`` caps it)."""
    cap = _cores()
    if env := os.environ.get("LABKIT_KERNEL_THREADS"):
        cap = max(1, min(cap, int(env)))
    return int(max(1, min(cap, work // MIN_WORK_PER_THREAD)))


@functools.cache
def _pool(n: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=n, thread_name_prefix="labkit-kernel")


def split_call(n_items: int, work: float, call: Callable[[int, int], None]) -> None:
    """``call(b0, b1)`` over ``range(n_items)`` in chunks, one per thread."""
    n = min(kernel_threads(work), n_items)
    if n <= 1:
        call(0, n_items)
        return
    bounds = [round(i * n_items / n) for i in range(n + 1)]
    futures = [_pool(n).submit(call, bounds[i], bounds[i + 1]) for i in range(n)]
    for f in futures:
        f.result()


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _bound_rows(bound: float | torch.Tensor, batch: torch.Size, n: int,
                y0: torch.Tensor) -> torch.Tensor:
    """The divergence bound of each trajectory, ``[n]`` in ``y0``'s dtype (the kernels
    compare in their ``real``, as the eager loops compare in the state's dtype): one
    number for all, or a tensor broadcasting against the batch
    (:func:`labkit.core.integrate.resolve_bound`)."""
    rows = torch.as_tensor(bound, dtype=y0.dtype).detach().cpu()
    return rows.expand(batch).reshape(n).contiguous()


def run_fixed(lib: _Library, params: torch.Tensor, y0: torch.Tensor, *, method: str,
              t0: float, dt: float, save_at: list[int], bound: float | torch.Tensor,
              out_dtype: torch.dtype | None
              ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the fixed-step driver: returns ``(out [*batch, nsave, D], last state,
    diverged, diverged_at)``; ``bound``: one number, or one per trajectory."""
    batch, dim = y0.shape[:-1], y0.shape[-1]
    y_flat = y0.reshape(-1, dim).contiguous()
    n = y_flat.shape[0]
    p, pstride = _param_rows(params, batch, n, y0)
    bounds = _bound_rows(bound, batch, n, y0)
    nsave = len(save_at)
    steps = torch.tensor(save_at, dtype=torch.int64)
    out = out32 = None
    if out_dtype in (None, y0.dtype):
        out = torch.empty((n, nsave, dim), dtype=y0.dtype)
    elif out_dtype == torch.float32:
        out32 = torch.empty((n, nsave, dim), dtype=torch.float32)
    else:
        raise ValueError(f"out_dtype must be {y0.dtype} or torch.float32, got {out_dtype}")
    yend = torch.empty_like(y_flat)
    diverged = torch.zeros(n, dtype=torch.uint8)
    diverged_at = torch.full((n,), math.nan, dtype=y0.dtype)
    code = {"rk4": 0, "euler": 1, "map": 2}[method]

    def call(b0: int, b1: int) -> None:
        lib.integrate(b0, b1, code, y_flat.data_ptr(), p.data_ptr(), pstride, t0, dt, nsave,
                      steps.data_ptr(), bounds.data_ptr(), _ptr(out), _ptr(out32),
                      yend.data_ptr(),
                      diverged.data_ptr(), diverged_at.data_ptr())

    split_call(n, n * save_at[-1], call)
    result = out if out is not None else out32
    if result is not None:
        result = result.reshape(*batch, nsave, dim)
    return (result, yend.reshape(*batch, dim), diverged.bool().reshape(batch),
            diverged_at.reshape(batch))


def run_lyapunov(lib: _Library, params: torch.Tensor, y0: torch.Tensor, *, dt: float,
                 n_transient: int, n_steps: int, m: int, qr_every: int,
                 bound: float | torch.Tensor, t0: float = 0.0, method: str = "rk4"
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the Benettin driver (``method`` ``"rk4"`` for a flow, ``"map"`` for a map, whose
    ``dt`` is then only the time an iteration stands for): ``(sums of log |R_ii|
    [*batch, m], last state, diverged, diverged_at)``."""
    code = {"rk4": 0, "map": 2}[method]
    batch, dim = y0.shape[:-1], y0.shape[-1]
    y_flat = y0.reshape(-1, dim).contiguous()
    n = y_flat.shape[0]
    p, pstride = _param_rows(params, batch, n, y0)
    bounds = _bound_rows(bound, batch, n, y0)
    exps = torch.empty((n, m), dtype=y0.dtype)
    yend = torch.empty_like(y_flat)
    diverged = torch.zeros(n, dtype=torch.uint8)
    diverged_at = torch.full((n,), math.nan, dtype=y0.dtype)

    def call(b0: int, b1: int) -> None:
        lib.lyapunov(b0, b1, code, y_flat.data_ptr(), p.data_ptr(), pstride, t0, dt,
                     n_transient,
                     n_steps, m, qr_every, bounds.data_ptr(), exps.data_ptr(), yend.data_ptr(),
                     diverged.data_ptr(), diverged_at.data_ptr())

    # a tangent step costs about (1 + m) field calls: weigh the work accordingly
    split_call(n, n * (n_transient + (1 + m) * n_steps), call)
    return (exps.reshape(*batch, m), yend.reshape(*batch, dim),
            diverged.bool().reshape(batch), diverged_at.reshape(batch))


def run_dopri5(lib: _Library, params: torch.Tensor, y0: torch.Tensor, t_out: torch.Tensor, *,
               rtol: float, atol: float, h0: float | None, max_steps: int,
               bound: float | torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the adaptive driver: ``(out [*batch, n_out, D], status, stopped_at, accepted
    steps)``; ``status`` (uint8) is 0 where a trajectory reached the end, 1 where it
    diverged, 2 where it ran out of steps (``max_steps``), and ``stopped_at`` the time it
    had reached then (NaN for 0)."""
    batch, dim = y0.shape[:-1], y0.shape[-1]
    y_flat = y0.reshape(-1, dim).contiguous()
    n = y_flat.shape[0]
    p, pstride = _param_rows(params, batch, n, y0)
    bounds = _bound_rows(bound, batch, n, y0)
    times = t_out.to(dtype=y0.dtype).contiguous()
    n_out = times.numel()
    out = torch.full((n, n_out, dim), math.nan, dtype=y0.dtype)
    status = torch.zeros(n, dtype=torch.uint8)
    stopped_at = torch.full((n,), math.nan, dtype=y0.dtype)
    accepted = torch.zeros(n, dtype=torch.int64)

    def call(b0: int, b1: int) -> None:
        lib.dopri5(b0, b1, y_flat.data_ptr(), p.data_ptr(), pstride, times.data_ptr(), n_out,
                   rtol, atol, -1.0 if h0 is None else h0, max_steps, bounds.data_ptr(),
                   out.data_ptr(), status.data_ptr(), stopped_at.data_ptr(),
                   accepted.data_ptr())

    # the work is unknown before the run; n_out samples per trajectory is a lower bound
    split_call(n, n * max(n_out, 100), call)
    return (out.reshape(*batch, n_out, dim), status.reshape(batch),
            stopped_at.reshape(batch), accepted.reshape(batch))


def _param_rows(params: torch.Tensor, batch: torch.Size, n: int,
                y0: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Parameter slots as rows ``[n, P]`` (stride P) or one row ``[P]`` (stride 0)."""
    params = params.to(dtype=y0.dtype)
    if params.ndim <= 1:
        row = params.reshape(-1).contiguous()
        return (row if row.numel() else torch.zeros(1, dtype=y0.dtype)), 0
    slots = params.shape[-1]
    try:
        full = params.expand(*batch, slots)
    except RuntimeError as exc:
        raise TraceError(f"parameter batch {tuple(params.shape[:-1])} does not broadcast "
                         f"against the state batch {tuple(batch)}") from exc
    return full.reshape(n, slots).contiguous(), slots
