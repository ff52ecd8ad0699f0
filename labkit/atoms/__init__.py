"""Atoms: molecules and crystals.

Structures travel as :class:`AtomsBatch` (dense padded tensors); the CDVAE benchmarks load
with :func:`load_cdvae` (checked downloads) or :func:`load_sample` (shipped) and are
written with :func:`write_structure` (CIF, POSCAR); :func:`crystal_bonds` finds bonds by
VESTA's element-pair cut-offs and :func:`cell_info` the lattice parameters and space
group (spglib); a DiffCSP-style
periodic diffusion model (:class:`CrystalDiffusion`, trained by :func:`train_csp`) predicts
structures; :mod:`labkit.atoms.metrics` scores them with the field's definitions beside
the no-model baselines (:func:`csp_benchmark`). ASE, pymatgen, SMACT and matminer are
imported only inside the functions that need them, so importing this package stays light.
"""

from labkit.atoms._batch import AtomsBatch
from labkit.atoms._bonds import CrystalBonds, bond_cutoffs, crystal_bonds
from labkit.atoms._cellinfo import CellInfo, cell_info
from labkit.atoms._denoiser import CSPDenoiser, DenoiserOutput
from labkit.atoms._diffusion import (
    CrystalDiffusion,
    CSPConfig,
    SampleResult,
    cosine_alpha_bars,
    sigma_schedule,
    wrapped_normal_log_density,
    wrapped_normal_score,
    wrapped_normal_score_norm,
)
from labkit.atoms._pointgroup import CrystalSymmetry, crystal_point_group
from labkit.atoms._symmetry_data import g2_symmetry_data
from labkit.atoms._train_csp import CSPTrainer, CSPTraining, train_csp
from labkit.atoms.baselines import perovskite_rule, random_coordinates
from labkit.atoms.datasets import CrystalDataset, benchmark_splits, load_cdvae, load_sample, resplit
from labkit.atoms.evaluate import CSPBenchmark, CSPRow, csp_benchmark, predict_structures
from labkit.atoms.io import (
    Conformers,
    g2_conformers,
    read_cdvae_csv,
    read_cif,
    sample_crystals,
    write_structure,
)
from labkit.atoms.metrics import (
    CoverageResult,
    MatchResult,
    PropertyDistances,
    ValidityResult,
    composition_valid,
    coverage,
    match_rate,
    match_rate_best_of_k,
    property_distances,
    space_group_numbers,
    structure_valid,
    validity,
)

__all__ = [
    "AtomsBatch",
    "CSPBenchmark",
    "CSPConfig",
    "CSPDenoiser",
    "CSPRow",
    "CSPTrainer",
    "CSPTraining",
    "CellInfo",
    "Conformers",
    "CoverageResult",
    "CrystalDataset",
    "CrystalBonds",
    "CrystalDiffusion",
    "CrystalSymmetry",
    "DenoiserOutput",
    "MatchResult",
    "PropertyDistances",
    "SampleResult",
    "ValidityResult",
    "benchmark_splits",
    "bond_cutoffs",
    "cell_info",
    "composition_valid",
    "cosine_alpha_bars",
    "coverage",
    "crystal_bonds",
    "crystal_point_group",
    "csp_benchmark",
    "g2_conformers",
    "g2_symmetry_data",
    "load_cdvae",
    "load_sample",
    "match_rate",
    "match_rate_best_of_k",
    "perovskite_rule",
    "predict_structures",
    "property_distances",
    "random_coordinates",
    "read_cdvae_csv",
    "read_cif",
    "resplit",
    "sample_crystals",
    "sigma_schedule",
    "space_group_numbers",
    "structure_valid",
    "train_csp",
    "validity",
    "wrapped_normal_log_density",
    "wrapped_normal_score",
    "wrapped_normal_score_norm",
    "write_structure",
]
