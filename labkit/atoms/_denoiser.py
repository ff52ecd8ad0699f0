"""A periodic E(3)-invariant denoiser for crystals on dense, padded tensors (DiffCSP's CSPNet idea).

A crystal is ``species`` ``[B, N]`` (atomic numbers, 0 = padding), fractional coordinates
``frac`` ``[B, N, 3]`` and a lattice ``lattice`` ``[B, 3, 3]`` whose **rows** are the
lattice vectors (cartesian positions are ``frac @ lattice``), with ``mask`` ``[B, N]``
marking real atoms. Every pair of atoms in a cell exchanges a message built from

- the node features :math:`h_i, h_j`,
- the six independent entries of the Gram matrix :math:`G = L L^\\top` (invariant under
  :math:`L \\to L R^\\top` for any orthogonal :math:`R`),
- Fourier features of the fractional difference
  :math:`\\Delta f_{ij} = f_j - f_i`: :math:`\\sin(2\\pi k \\Delta f), \\cos(2\\pi k \\Delta f)`
  for :math:`k = 1..K`, which do not change when any :math:`f_i` moves by an integer
  vector, nor when every :math:`f_i` moves by the same vector;

messages are averaged over the real atoms of the cell (padding never enters), and nodes
are updated residually. The dense layout computes the first linear map of each message
as :math:`W_1 h_i + W_2 h_j + W_3 e_{ij}`, so the :math:`[B, N, N, H]` edge tensor is a
broadcast sum rather than a gather over edge lists.

Outputs:

- ``coords`` ``[B, N, 3]``: the (normalised) score for the fractional coordinates: a
  function of invariants only, so invariant under rotations/reflections of the lattice,
  integer shifts and common translations of ``frac``, and permutation-equivariant
  (zero on padding).
- ``lattice`` ``[B, 3, 3]``: the lattice noise prediction
  :math:`\\hat\\epsilon_L = \\varphi L` with :math:`\\varphi` ``[B, 3, 3]`` read from
  the mean-pooled node features (invariant). With rows as lattice vectors, a rotation
  acts as :math:`L \\to L R^\\top`, and :math:`\\varphi (L R^\\top) = (\\varphi L) R^\\top`:
  the prediction rotates with the lattice, for any :math:`R \\in O(3)`.
- ``types`` ``[B, N, n_types]``: for ab initio generation (``n_types > 0``), per-node
  logits over the types, the network's estimate of each atom's clean type; a linear
  read-out of the invariant node features, so invariant under rotations, integer shifts
  and common translations, permutation-equivariant, zero on padding.
  :class:`~labkit.atoms.CrystalDiffusion` turns them into its noise prediction
  :math:`\\hat\\epsilon_A = (A_t - \\sqrt{\\bar\\alpha_t}\\,\\mathrm{softmax})/
  \\sqrt{1 - \\bar\\alpha_t}`. With ``n_types = 0`` (crystal structure prediction) it has
  no columns, ``[B, N, 0]``.

Atom types enter either as atomic numbers through an embedding (``n_types = 0``, species
known) or, for generation, as noisy one-hot vectors :math:`A_t` ``[B, N, n_types]`` (column
``k`` stands for atomic number ``k + 1``) through a linear map.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from jaxtyping import Float
from torch import Tensor, nn

from labkit.core.config import check_int
from labkit.core.rng import make_generator
from labkit.core.shapes import AtomMask, DiffusionSteps, FracCoords, Lattices, Species
from labkit.errors import ConfigError, DataError

__all__ = ["CSPDenoiser", "DenoiserOutput", "fourier_features", "gram_features", "species_to_onehot"]

#: Atomic numbers 1..MAX_Z are embedded; 0 is padding.
MAX_Z = 118

_TRIU = (torch.tensor([0, 0, 0, 1, 1, 2]), torch.tensor([0, 1, 2, 1, 2, 2]))


class DenoiserOutput(NamedTuple):
    """What :class:`CSPDenoiser` predicts: ``coords`` ``[B, N, 3]`` (zero on padding),
    ``lattice`` ``[B, 3, 3]`` and ``types`` ``[B, N, n_types]``, per-node type logits
    (zero on padding; no columns when the network has no type head)."""

    coords: torch.Tensor
    lattice: torch.Tensor
    types: torch.Tensor


def species_to_onehot(species: Species, mask: AtomMask, n_types: int = MAX_Z,
                      dtype: torch.dtype = torch.float32) -> Float[Tensor, "batch atoms types"]:
    """One-hot type vectors ``[B, N, n_types]`` of atomic numbers ``[B, N]``: column
    ``k`` is atomic number ``k + 1``; rows of padding are zero.

    Example:
        >>> species_to_onehot(torch.tensor([[2, 1, 0]]), torch.tensor([[True, True, False]]), 3)
        tensor([[[0., 1., 0.],
                 [1., 0., 0.],
                 [0., 0., 0.]]])
    """
    idx = (species.long() - 1).clamp(0, n_types - 1)
    onehot = torch.nn.functional.one_hot(idx, n_types).to(dtype)
    return onehot * mask[..., None].to(dtype)


def gram_features(lattice: Float[Tensor, "*batch 3 3"]) -> Float[Tensor, "*batch 6"]:
    """The six upper-triangular entries of :math:`L L^\\top` (Å²), ``[B, 3, 3] -> [B, 6]``:
    lengths squared and dot products of the lattice rows, invariant under :math:`O(3)`."""
    gram = lattice @ lattice.transpose(-1, -2)
    return gram[..., _TRIU[0], _TRIU[1]]


def fourier_features(delta: Float[Tensor, "*batch 3"], k: int) -> Float[Tensor, "*batch features"]:
    """:math:`[\\sin 2\\pi m \\Delta, \\cos 2\\pi m \\Delta]_{m=1..k}` of every component:
    ``[..., 3] -> [..., 6k]``; periodic with period 1 in each component."""
    freqs = torch.arange(1, k + 1, device=delta.device, dtype=delta.dtype) * (2 * math.pi)
    arg = (delta[..., :, None] * freqs).flatten(-2)
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)


def time_embedding(t: DiffusionSteps, dim: int, t_max: int) -> Float[Tensor, "batch embedding"]:
    """Sinusoidal embedding of integer diffusion steps ``t`` ``[B]`` (rescaled to 0..1000)."""
    half = dim // 2
    s = t.to(torch.float64) * (1000.0 / t_max)
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64, device=t.device)
                      / max(half - 1, 1))
    arg = s[:, None] * freqs
    out = torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)
    if dim % 2:
        out = torch.cat([out, torch.zeros_like(out[:, :1])], dim=-1)
    return out


class _Layer(nn.Module):
    """One message-passing layer: edge MLP on ``(h_i, h_j, e_ij)``, masked mean, residual
    node MLP on ``(h_i, m_i)``, with a pre-LayerNorm."""

    def __init__(self, hidden: int, edge_dim: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden, dtype=dtype)
        self.w_i = nn.Linear(hidden, hidden, dtype=dtype)
        self.w_j = nn.Linear(hidden, hidden, bias=False, dtype=dtype)
        self.w_e = nn.Linear(edge_dim, hidden, bias=False, dtype=dtype)
        self.edge_out = nn.Linear(hidden, hidden, dtype=dtype)
        self.node = nn.Sequential(nn.Linear(2 * hidden, hidden, dtype=dtype), nn.SiLU(),
                                  nn.Linear(hidden, hidden, dtype=dtype))
        self.act = nn.SiLU()

    def forward(self, h: Float[Tensor, "batch atoms hidden"],
                edges: Float[Tensor, "batch atoms atoms edge"],
                pair_w: Float[Tensor, "batch atoms atoms"]) -> Float[Tensor, "batch atoms hidden"]:
        x = self.norm(h)
        pre = self.w_i(x)[:, :, None, :] + self.w_j(x)[:, None, :, :] + self.w_e(edges)
        msg = self.act(self.edge_out(self.act(pre)))                 # [B, N, N, H]
        agg = torch.einsum("bij,bijh->bih", pair_w.to(msg.dtype), msg)
        return h + self.node(torch.cat([x, agg], dim=-1))


class CSPDenoiser(nn.Module):
    """Periodic-E(3)-invariant message passing on dense padded crystals.

    Args:
        layers: message-passing layers ``L``.
        hidden: node and message width ``H``.
        fourier: number ``K`` of Fourier frequencies of the fractional differences.
        timesteps: the diffusion's ``T`` (the time embedding rescales ``t / T``).
        seed: initialises the weights (an int, a :class:`torch.Generator` or ``None``,
            through :func:`labkit.core.make_generator`); the same seed gives the same
            network, in every ``dtype`` (see :meth:`reset_parameters`).
        n_types: 0 (default) for crystal structure prediction: ``species`` are atomic
            numbers. ``n_types > 0`` (ab initio generation, usually
            :data:`MAX_Z`): ``species`` are float noisy type vectors ``[B, N, n_types]``
            and the network also returns type logits (``DenoiserOutput.types``).
        dtype: of the parameters (default float32).

    Call it as ``net(species, frac, lattice, mask, t)`` with ``t`` ``[B]`` integer steps in
    ``1..T``; it returns a :class:`DenoiserOutput`.

    Example:
        >>> import torch
        >>> net = CSPDenoiser(layers=1, hidden=16, fourier=2, timesteps=10)
        >>> species = torch.tensor([[8, 22, 0]]); mask = species > 0
        >>> out = net(species, torch.rand(1, 3, 3), 4 * torch.eye(3)[None], mask, torch.tensor([5]))
        >>> out.coords.shape, out.lattice.shape, float(out.coords.detach()[0, 2].abs().sum())
        (torch.Size([1, 3, 3]), torch.Size([1, 3, 3]), 0.0)
    """

    def __init__(self, *, layers: int = 2, hidden: int = 64, fourier: int = 8, timesteps: int = 100,
                 seed: int | torch.Generator | None = 0, n_types: int = 0,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        for name, v in (("layers", layers), ("hidden", hidden), ("fourier", fourier),
                        ("timesteps", timesteps)):
            check_int(name, v)
        check_int("n_types", n_types, least=0)
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise ConfigError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        gen = make_generator(seed)
        self.hidden, self.fourier, self.timesteps, self.n_types = hidden, fourier, timesteps, n_types
        edge_dim = 6 + 6 * fourier
        # Built on the meta device (no memory, no draw from torch's global generator), then
        # allocated and drawn from ``seed`` by reset_parameters. CSP embeds atomic numbers;
        # generation reads the noisy one-hot vectors linearly.
        with torch.device("meta"):
            self.embed = (nn.Linear(n_types, hidden, dtype=dtype) if n_types
                          else nn.Embedding(MAX_Z + 1, hidden, dtype=dtype))
            self.node_in = nn.Linear(2 * hidden, hidden, dtype=dtype)
            self.layers = nn.ModuleList(_Layer(hidden, edge_dim, dtype) for _ in range(layers))
            self.norm_out = nn.LayerNorm(hidden, dtype=dtype)
            self.coord_head = nn.Linear(hidden, 3, bias=False, dtype=dtype)
            self.lattice_head = nn.Sequential(nn.Linear(hidden, hidden, dtype=dtype), nn.SiLU(),
                                              nn.Linear(hidden, 9, dtype=dtype))
            self.type_head = nn.Linear(hidden, n_types, dtype=dtype) if n_types else None
        self.to_empty(device="cpu")
        self.reset_parameters(gen)

    def reset_parameters(self, seed: int | torch.Generator | None = 0) -> None:
        """Draw every weight from ``seed``: linear maps uniform on
        :math:`\\pm 1/\\sqrt{\\text{fan-in}}` (PyTorch's default bounds, weight then bias),
        the embedding standard normal, LayerNorms to 1 and 0, module by module in
        registration order.

        The draws are float32 on the CPU (then cast to the parameters' dtype and device),
        so a seed gives the same network, rounded to float32, in every dtype.
        :func:`labkit.core.uniform` draws in float64 instead and would give different
        float32 weights for the same seed; this model keeps its float32 draws so that
        seeded results stay as they are.
        """
        gen = make_generator(seed)

        def draw(param: torch.Tensor, fill) -> None:
            param.copy_(fill(torch.empty(param.shape, dtype=torch.float32)))

        with torch.no_grad():
            for mod in self.modules():
                if isinstance(mod, nn.Linear):
                    bound = mod.in_features ** -0.5
                    draw(mod.weight, lambda t, b=bound: t.uniform_(-b, b, generator=gen))
                    if mod.bias is not None:
                        draw(mod.bias, lambda t, b=bound: t.uniform_(-b, b, generator=gen))
                elif isinstance(mod, nn.Embedding):
                    draw(mod.weight, lambda t: t.normal_(generator=gen))
                elif isinstance(mod, nn.LayerNorm):
                    nn.init.ones_(mod.weight)
                    nn.init.zeros_(mod.bias)

    def forward(self, species: Species | Float[Tensor, "batch atoms types"], frac: FracCoords,
                lattice: Lattices, mask: AtomMask, t: DiffusionSteps) -> DenoiserOutput:
        dtype = frac.dtype
        if self.n_types:
            if species.shape != (*mask.shape, self.n_types) or not species.is_floating_point():
                raise DataError(f"this denoiser generates types: species must be float type vectors "
                                f"[B, N, {self.n_types}], got {species.dtype} {tuple(species.shape)}")
            species = torch.where(mask[..., None], species, torch.zeros((), dtype=species.dtype,
                                                                        device=species.device))
            species = species.to(dtype)
        else:
            species = torch.where(mask, species, torch.zeros_like(species)).clamp(0, MAX_Z)
        frac = torch.where(mask[..., None], frac, torch.zeros_like(frac))
        temb = time_embedding(t, self.hidden, self.timesteps).to(dtype)
        n_atoms = mask.shape[1]
        h = self.node_in(torch.cat([self.embed(species).to(dtype),
                                    temb[:, None, :].expand(-1, n_atoms, -1)], dim=-1))
        delta = frac[:, None, :, :] - frac[:, :, None, :]             # f_j - f_i  [B, N, N, 3]
        gram = gram_features(lattice)[:, None, None, :].expand(-1, n_atoms, n_atoms, -1)
        edges = torch.cat([gram, fourier_features(delta, self.fourier)], dim=-1)
        mf = mask.to(dtype)
        count = mf.sum(1).clamp_min(1.0)
        pair_w = mf[:, :, None] * mf[:, None, :] / count[:, None, None]  # mean over real j
        for layer in self.layers:
            h = layer(h, edges, pair_w)
        h = self.norm_out(h)
        coords = torch.where(mask[..., None], self.coord_head(h), torch.zeros((), dtype=h.dtype,
                                                                               device=h.device))
        pooled = (h * mf[..., None].to(h.dtype)).sum(1) / count[:, None].to(h.dtype)
        phi = self.lattice_head(pooled).reshape(-1, 3, 3)
        if self.type_head is None:
            types = h.new_zeros(*h.shape[:2], 0)
        else:
            types = torch.where(mask[..., None], self.type_head(h), torch.zeros((), dtype=h.dtype,
                                                                                  device=h.device))
        return DenoiserOutput(coords=coords, lattice=phi @ lattice.to(phi.dtype), types=types)
