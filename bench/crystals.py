"""DiffCSP-style crystal diffusion: labkit's dense padded batches against sparse edge lists.

One run, on the same machine and the same perov-5 crystals (``read_cdvae_csv``):

- training steps per second of labkit's dense model (:func:`labkit.atoms.train_csp`'s
  step: noise, denoiser forward on ``[B, N, N, H]`` pair tensors, backward, Adam);
- the same step through a simple re-implementation of DiffCSP's sparse-graph batching
  (atoms of all crystals concatenated, an edge list over all ordered pairs within each
  crystal, per-edge concatenation ``[h_i, h_j, e_ij]`` into the message MLP, scatter-add
  mean aggregation), with the *same weights*; it first checks that both layouts give the
  same outputs, then prints the speed ratio;
- crystal-structure-prediction samples per second (``2 T`` network calls each);
- optionally (``--curve STEPS``) the training loss curve on the subset.

    python bench/crystals.py                        # CPU (and CUDA when present)
    python bench/crystals.py --quick                # smoke run
    python bench/crystals.py --config official --device cuda   # DiffCSP's size
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from labkit.atoms import (
    CSPConfig,
    CSPDenoiser,
    CSPTrainer,
    DenoiserOutput,
    train_csp,
    wrapped_normal_score,
)
from labkit.atoms._denoiser import fourier_features, gram_features, time_embedding
from labkit.atoms._diffusion import wrap
from labkit.atoms.io import read_cdvae_csv
from labkit.core import describe_device, resolve_device

ROOT = Path(__file__).resolve().parents[1]
VAL = ROOT.parent / "shared" / "data" / "cdvae" / "perov_5" / "val.csv"
SAMPLE = ROOT / "labkit" / "atoms" / "data" / "perov_5_sample.csv"


def load(limit: int):
    """Dense padded tensors of the first ``limit`` perov-5 validation crystals."""
    path = VAL if VAL.exists() else SAMPLE
    atoms = read_cdvae_csv(path, limit=limit)
    n = max(len(a) for a in atoms)
    b = len(atoms)
    species = torch.zeros(b, n, dtype=torch.long)
    frac = torch.zeros(b, n, 3)
    lattice = torch.zeros(b, 3, 3)
    for k, a in enumerate(atoms):
        m = len(a)
        species[k, :m] = torch.as_tensor(a.numbers)
        frac[k, :m] = torch.as_tensor(np.mod(a.get_scaled_positions(), 1.0), dtype=torch.float32)
        lattice[k] = torch.as_tensor(a.cell.array, dtype=torch.float32)
    return (species, wrap(frac), lattice, species > 0), path


# -- the sparse reference ---------------------------------------------------------------
def sparse_graph(mask: torch.Tensor):
    """DiffCSP-style batching: flat atom index, crystal of each atom, and all ordered pairs
    ``(i, j)`` of atoms in the same crystal (self-pairs included, as the dense model)."""
    b, n = mask.shape
    flat = torch.nonzero(mask.flatten()).squeeze(1)
    crystal = flat // n
    counts = mask.sum(1)
    starts = torch.cumsum(counts, 0) - counts
    src, dst = [], []
    for c in range(b):
        idx = torch.arange(int(counts[c]), device=mask.device) + starts[c]
        src.append(idx.repeat_interleave(len(idx)))
        dst.append(idx.repeat(len(idx)))
    return flat, crystal, torch.cat(src), torch.cat(dst), counts


def sparse_forward(net: CSPDenoiser, species, frac, lattice, mask, t, graph) -> DenoiserOutput:
    """The denoiser's maths on edge lists with gather/scatter (same parameters as ``net``)."""
    flat, crystal, src, dst, counts = graph
    b, n = species.shape
    z = species.flatten()[flat]
    f = frac.reshape(-1, 3)[flat]
    temb = time_embedding(t, net.hidden, net.timesteps).to(frac.dtype)
    h = net.node_in(torch.cat([net.embed(z), temb[crystal]], -1))
    edges = torch.cat([gram_features(lattice)[crystal[src]],
                       fourier_features(f[dst] - f[src], net.fourier)], -1)
    inv_count = (1.0 / counts.to(frac.dtype))[crystal[src]]
    for layer in net.layers:
        x = layer.norm(h)
        weight = torch.cat([layer.w_i.weight, layer.w_j.weight, layer.w_e.weight], 1)
        pre = torch.cat([x[src], x[dst], edges], -1) @ weight.T + layer.w_i.bias
        msg = layer.act(layer.edge_out(layer.act(pre))) * inv_count[:, None]
        agg = torch.zeros_like(h).index_add_(0, src, msg)
        h = h + layer.node(torch.cat([x, agg], -1))
    h = net.norm_out(h)
    pooled = torch.zeros(b, h.shape[1], dtype=h.dtype, device=h.device).index_add_(0, crystal, h)
    pooled = pooled / counts[:, None].to(h.dtype)
    phi = net.lattice_head(pooled).reshape(-1, 3, 3)
    coords = torch.zeros(b * n, 3, dtype=h.dtype, device=h.device)
    coords[flat] = net.coord_head(h)
    return DenoiserOutput(coords.reshape(b, n, 3), phi @ lattice, h.new_zeros(b, n, 0))


def sparse_step(trainer: CSPTrainer, batch, graph_cache: dict) -> float:
    """One training step with the sparse layout (same noise process and loss)."""
    model, cfg, gen = trainer.model, trainer.config, trainer.rng
    species, frac, lattice, mask = batch
    dev = frac.device
    key = (tuple(mask.shape), mask.sum().item())
    if key not in graph_cache:  # perov-5 cells all have 5 atoms: one graph serves every batch
        graph_cache[key] = sparse_graph(mask)
    graph = graph_cache[key]
    b, n = species.shape
    t = torch.randint(1, cfg.timesteps + 1, (b,), generator=gen).to(dev)
    eps_l = torch.randn(b, 3, 3, generator=gen).to(dev)
    eps_f = torch.randn(b, n, 3, generator=gen).to(dev)
    ab = model.alpha_bars[t][:, None, None]
    sig = model.sigmas[t][:, None, None]
    lat_t = ab.sqrt() * lattice + (1 - ab).sqrt() * eps_l
    frac_t = wrap(frac + sig * eps_f)
    target = wrapped_normal_score(frac_t - frac, sig) / model.score_norms[t][:, None, None].sqrt()
    trainer.opt.zero_grad(set_to_none=True)
    with model._autocast(dev):
        out = sparse_forward(model.denoiser, species, frac_t, lat_t, mask, t, graph)
    mf = mask[..., None].float()
    loss = (out.lattice.float() - eps_l).square().mean() + \
        ((out.coords.float() - target).square() * mf).sum() / (3 * mf.sum())
    loss.backward()
    trainer.opt.step()
    return loss.item()


def timed(fn, repeats: int, device: torch.device) -> float:
    """Seconds per call (after two warm-up calls)."""
    for _ in range(2):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def bench_device(data, cfg: CSPConfig, device: torch.device, args) -> None:
    trainer = CSPTrainer(data, cfg, seed=0, device=device)
    batch = trainer.batch(0)
    # the two layouts compute the same function
    with torch.no_grad():
        species, frac, lattice, mask = batch
        t = torch.randint(1, cfg.timesteps + 1, (species.shape[0],), device=device)
        dense = trainer.model.denoiser(species, frac, lattice, mask, t)
        sparse = sparse_forward(trainer.model.denoiser, species, frac, lattice, mask, t,
                                sparse_graph(mask))
        diff = max(float((dense.coords - sparse.coords).abs().max()),
                   float((dense.lattice - sparse.lattice).abs().max()))
    print(f"  [{device}] dense vs sparse outputs: max |diff| = {diff:.2e}")
    dense_s = timed(lambda: trainer.step(0), args.repeats, device)
    cache: dict = {}
    sparse_s = timed(lambda: sparse_step(trainer, batch, cache), args.repeats, device)
    print(f"  [{device}] training step, batch {cfg.batch_size}: dense {1 / dense_s:8.2f} steps/s "
          f"({dense_s * 1e3:.1f} ms), sparse edge lists {1 / sparse_s:8.2f} steps/s "
          f"({sparse_s * 1e3:.1f} ms); dense / sparse speed = {sparse_s / dense_s:.2f}x")
    species, mask = data[0][: args.samples].to(device), data[3][: args.samples].to(device)
    start = time.perf_counter()
    res = trainer.model.sample(species, mask, seed=0, save_every=cfg.timesteps)
    if device.type == "cuda":
        torch.cuda.synchronize()
    sec = time.perf_counter() - start
    print(f"  [{device}] sampling {len(species)} crystals, T = {cfg.timesteps} "
          f"({2 * cfg.timesteps} network calls): {sec:.2f} s = {len(species) / sec:.1f} samples/s "
          f"(finite: {bool(torch.isfinite(res.frac).all() and torch.isfinite(res.lattice).all())})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="all", help="'all' (CPU, then CUDA if present), 'cpu', 'cuda'")
    parser.add_argument("--config", default="small", choices=["small", "official", "full"],
                        help="'small': CSPConfig(); 'official' (or 'full'): CSPConfig.official()")
    parser.add_argument("--limit", type=int, default=1024, help="crystals read from perov-5 val")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the config's)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--samples", type=int, default=256, help="crystals sampled at once")
    parser.add_argument("--curve", type=int, default=0, help="also train this many steps on CPU")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (small models run fastest on one; 0 = torch's default)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.limit, args.repeats, args.samples = 64, 3, 8
    cfg = CSPConfig() if args.config == "small" else CSPConfig.official()
    if args.batch:
        cfg = cfg.replace(batch_size=args.batch)
    began = time.perf_counter()
    data, path = load(args.limit)
    print(f"perov-5: {len(data[0])} crystals from {path.name} in {time.perf_counter() - began:.1f} s; "
          f"config {args.config}: layers={cfg.layers} hidden={cfg.hidden} fourier={cfg.fourier} "
          f"T={cfg.timesteps} batch={cfg.batch_size}")
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {describe_device()}")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.device == "all" \
        else [args.device]
    for name in devices:
        bench_device(data, cfg, resolve_device(name), args)
    if args.curve:
        start = time.perf_counter()
        run = train_csp(data, cfg.replace(steps=args.curve), seed=0, device="cpu")
        loss = run.history["loss"]
        window = max(1, args.curve // 10)
        points = [f"{i}:{np.mean(loss[i:i + window]):.3f}" for i in range(0, args.curve, window)]
        print(f"loss curve (CPU, {args.curve} steps, mean over {window}-step windows, "
              f"{time.perf_counter() - start:.1f} s): " + " ".join(points))
        print("  lattice:", " ".join(f"{np.mean(run.history['loss_lattice'][i:i + window]):.3f}"
                                     for i in range(0, args.curve, window)))
        print("  coord:  ", " ".join(f"{np.mean(run.history['loss_coord'][i:i + window]):.3f}"
                                     for i in range(0, args.curve, window)))


if __name__ == "__main__":
    main()
