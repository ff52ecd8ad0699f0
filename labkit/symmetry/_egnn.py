"""An E(n)-equivariant graph layer (EGNN; Satorras, Hoogeboom and Welling, ICML 2021).

On a dense, fully connected graph of ``N`` nodes with features ``h`` ``[B, N, F]`` and
coordinates ``x`` ``[B, N, d]``:

.. math::

    m_{ij} = \\phi_e(h_i, h_j, \\lVert x_i - x_j \\rVert^2), \\qquad
    x_i' = x_i + \\frac{1}{N - 1} \\sum_{j \\ne i} (x_i - x_j)\\, \\phi_x(m_{ij}), \\qquad
    h_i' = h_i + \\phi_h\\big(h_i, \\sum_{j \\ne i} m_{ij}\\big).

Only distances enter the messages and coordinates are updated along differences, so
the layer commutes with rotations, reflections, translations and node permutations.
``tests/symmetry/test_egnn_frames.py`` checks that with :func:`assert_equivariant`.
"""

from __future__ import annotations

import torch
from torch import nn

from labkit.core.config import check_int
from labkit.core.rng import make_generator, uniform
from labkit.errors import ConfigError

__all__ = ["EGNNLayer"]


def _mlp(n_in: int, hidden: int, n_out: int, *, generator: torch.Generator,
         dtype: torch.dtype) -> nn.Sequential:
    r"""Linear, SiLU, Linear: weights uniform on :math:`\pm 1/\sqrt{\text{fan-in}}` drawn
    from ``generator`` by :func:`labkit.core.uniform`, biases zero."""
    net = nn.Sequential(nn.Linear(n_in, hidden, dtype=dtype, device="meta"), nn.SiLU(),
                        nn.Linear(hidden, n_out, dtype=dtype, device="meta"))
    net = net.to_empty(device="cpu")
    with torch.no_grad():
        for p in net.parameters():
            if p.ndim == 2:
                p.copy_(uniform(tuple(p.shape), p.shape[-1] ** -0.5, generator, dtype=dtype))
            else:
                p.zero_()
    return net


class EGNNLayer(nn.Module):
    """One EGNN layer on dense batched graphs.

    Args:
        features: node feature size ``F``.
        hidden: width of the message, coordinate and node MLPs.
        seed: seeds the initial weights (an int, a :class:`torch.Generator` used as is, or
            None for fresh entropy); the global random state is never used.
        dtype: the parameters' dtype. The initial values are drawn in float64 and cast, so
            ``EGNNLayer(F, seed=s, dtype=torch.float64)`` holds the float64 values of which
            ``EGNNLayer(F, seed=s)`` holds the rounding.

    ``forward(h, x, mask=None)`` takes ``h`` ``[B, N, F]``, ``x`` ``[B, N, d]`` and an
    optional node mask ``[B, N]`` (padding atoms are ignored and left unchanged); it
    returns ``(h', x')`` of the same shapes.
    """

    def __init__(self, features: int, hidden: int = 64, *,
                 seed: int | torch.Generator | None = 0,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        check_int("features", features)
        check_int("hidden", hidden)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ConfigError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
        generator = make_generator(seed)
        self.phi_e = _mlp(2 * features + 1, hidden, hidden, generator=generator, dtype=dtype)
        self.phi_x = _mlp(hidden, hidden, 1, generator=generator, dtype=dtype)
        self.phi_h = _mlp(features + hidden, hidden, features, generator=generator, dtype=dtype)

    def messages(self, h: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(m_ij [B, N, N, hidden], x_i - x_j [B, N, N, d])``."""
        n = h.shape[-2]
        diff = x[..., :, None, :] - x[..., None, :, :]
        dist2 = (diff**2).sum(-1, keepdim=True)
        hi = h[..., :, None, :].expand(*h.shape[:-2], n, n, h.shape[-1])
        hj = h[..., None, :, :].expand(*h.shape[:-2], n, n, h.shape[-1])
        return self.phi_e(torch.cat([hi, hj, dist2], dim=-1)), diff

    def forward(self, h: torch.Tensor, x: torch.Tensor,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        n = h.shape[-2]
        m, diff = self.messages(h, x)
        pair = 1.0 - torch.eye(n, dtype=h.dtype, device=h.device)
        if mask is not None:
            node = mask.to(h.dtype)
            pair = pair * node[..., :, None] * node[..., None, :]
        count = pair.sum(-1, keepdim=True).clamp_min(1.0)
        w = pair[..., None]
        x_new = x + (diff * self.phi_x(m) * w).sum(-2) / count
        h_new = h + self.phi_h(torch.cat([h, (m * w).sum(-2)], dim=-1))
        if mask is not None:
            keep = mask[..., None].bool()
            x_new, h_new = torch.where(keep, x_new, x), torch.where(keep, h_new, h)
        return h_new, x_new
