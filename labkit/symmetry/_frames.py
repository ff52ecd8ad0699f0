"""Frame averaging (Puny et al., ICLR 2022): any backbone made exactly O(d)/SO(d)/E(d)-equivariant.

For a point cloud :math:`X \\in R^{N \\times d}` with centroid :math:`t` and covariance
eigenvectors :math:`U`, the frames are :math:`F(X) = \\{(U S, t)\\}` for the sign matrices
:math:`S = \\mathrm{diag}(\\pm 1)` (all :math:`2^d` for O(d), those with
:math:`\\det(US) = 1` for SO(d)). Then

.. math::

    \\langle \\phi \\rangle(X) = \\frac{1}{|F|} \\sum_{(R, t) \\in F(X)} \\rho_{out}(R, t)\\,
    \\phi\\big((X - t) R\\big)

is invariant or equivariant whatever :math:`\\phi` is. The frame is computed without
gradient. It is only well defined when the covariance has distinct eigenvalues: clouds
with (nearly) repeated eigenvalues, such as cube vertices, are reported by
:func:`degenerate_frames` and make :class:`FrameAveraging` warn (docs/symmetry.md,
"Frame averaging and degenerate spectra": an invariance error of about 1e-15 on generic
clouds, 0.069 on cube vertices).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable

import torch
from torch import nn

from labkit.core.config import check_in, check_positive
from labkit.errors import ConfigError

__all__ = ["FrameAveraging", "degenerate_frames", "pca_frames"]


def pca_frames(x: torch.Tensor, *, group: str = "O") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Frames of point clouds ``x`` ``[B, N, d]``.

    Returns:
        ``(R, t, eigenvalues)``: rotations ``[B, F, d, d]`` (columns are the signed
        principal axes), centroids ``[B, d]`` and covariance eigenvalues ``[B, d]``
        (ascending).
    """
    check_in("group", group, ("O", "SO"))
    if x.ndim != 3:
        raise ConfigError(f"x must be point clouds [B, N, d], got shape {tuple(x.shape)}")
    with torch.no_grad():
        t = x.mean(-2)
        c = x - t[:, None, :]
        cov = c.mT @ c / x.shape[-2]
        evals, u = torch.linalg.eigh(cov)
        d = x.shape[-1]
        signs = torch.tensor(list(itertools.product((1.0, -1.0), repeat=d)), dtype=x.dtype,
                             device=x.device)  # [2^d, d]
        frames = u[:, None, :, :] * signs[None, :, None, :]  # [B, 2^d, d, d]
        if group == "SO":
            det = torch.linalg.det(frames)
            keep = det > 0  # exactly half of the sign patterns for each cloud
            frames = frames[keep].reshape(x.shape[0], -1, d, d)
    return frames, t, evals


def degenerate_frames(x: torch.Tensor, *, rtol: float = 1e-4) -> torch.Tensor:
    """``[B]`` True where two covariance eigenvalues of a cloud are within ``rtol``
    (relative to the largest), so its PCA frame is not well defined."""
    check_positive("rtol", rtol)
    _, _, evals = pca_frames(x)
    return _degenerate(evals, rtol)


def _degenerate(evals: torch.Tensor, rtol: float) -> torch.Tensor:
    """``[B]`` True where two of the ascending eigenvalues ``[B, d]`` are within ``rtol``
    of the largest."""
    gaps = evals.diff(dim=-1).abs().min(-1).values
    return gaps <= rtol * evals.abs().max(-1).values.clamp_min(torch.finfo(evals.dtype).tiny)


class FrameAveraging(nn.Module):
    """Wrap ``backbone`` (``[B', N, d] -> [B', ...]``) so its output is exactly
    invariant (``output="invariant"``), equivariant as vectors (``"vector"``: last
    axis ``d`` rotates) or as points (``"point"``: rotates and translates).

    Args:
        backbone: any module or callable on centred, frame-aligned clouds.
        output: how the output transforms.
        group: ``"O"`` (rotations and reflections, :math:`2^d` frames) or ``"SO"``.
        rtol: eigenvalue-gap tolerance for the degeneracy warning.
    """

    def __init__(self, backbone: Callable[[torch.Tensor], torch.Tensor], *,
                 output: str = "invariant", group: str = "O", rtol: float = 1e-4) -> None:
        super().__init__()
        check_in("output", output, ("invariant", "vector", "point"))
        check_in("group", group, ("O", "SO"))
        check_positive("rtol", rtol)
        self.backbone, self.output, self.group, self.rtol = backbone, output, group, rtol

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames, t, evals = pca_frames(x, group=self.group)
        if bool(_degenerate(evals, self.rtol).any()):
            warnings.warn(
                "FrameAveraging: some clouds have (nearly) repeated covariance eigenvalues; "
                "their PCA frames are not unique and the output is not exactly equivariant",
                RuntimeWarning,
                stacklevel=2,
            )
        b, f, d, _ = frames.shape
        local = (x - t[:, None, :])[:, None] @ frames  # [B, F, N, d]: coordinates in each frame
        out = self.backbone(local.reshape(b * f, *x.shape[1:]))
        out = out.reshape(b, f, *out.shape[1:])
        if self.output == "invariant":
            return out.mean(1)
        if out.shape[-1] != d:
            raise ConfigError(f"a {self.output} output needs last axis {d}, got {tuple(out.shape)}")
        lead = out.ndim - 3  # axes between the frame axis and the vector axis
        r = frames.reshape(b, f, *([1] * lead), d, d)
        back = (r @ out[..., None]).squeeze(-1).mean(1)
        if self.output == "point":
            back = back + t.reshape(b, *([1] * lead), d)
        return back
