"""The CDVAE crystal benchmarks (perov-5, carbon-24, MP-20) as :class:`AtomsBatch` data sets.

Files come from the CDVAE repository at a pinned commit (txie-93/cdvae, MIT licence;
Xie et al., ICLR 2022), one CSV per split with a P1 CIF per row. Real users download
them once into the cache folder (:func:`labkit.core.cache.default_cache_dir`), checked
against SHA-256 on download and on every later read from the cache. Only splits whose
checksum labkit knows (:data:`CDVAE_SHA256`) are downloaded; for the others a user
passes ``sha256=`` themselves, or ``root=`` (or sets ``$LABKIT_CDVAE_ROOT`` to) a folder
that already holds ``<name>/<split>.csv``, which is read as it is, without download or
checksum (tests and offline machines do the same). Every split is also checked against
the published number of structures.

Only the *official* splits carry ``official=True``. :func:`resplit` makes seeded
train/val/test subsets of any data set and labels them as not official, so a number
measured on them can never be mistaken for a benchmark figure.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labkit.atoms._batch import AtomsBatch
from labkit.core.cache import default_cache_dir
from labkit.core.config import check_in, check_int
from labkit.core.download import check_sha256, fetch
from labkit.core.rng import make_generator
from labkit.errors import ConfigError, DataError

__all__ = ["CDVAE_COMMIT", "CDVAE_SHA256", "CDVAE_SIZES", "CrystalDataset", "load_cdvae", "benchmark_splits",
           "load_sample", "read_split", "resplit"]

#: The CDVAE commit the files are taken from.
CDVAE_COMMIT = "f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea"
_URL = "https://raw.githubusercontent.com/txie-93/cdvae/{commit}/data/{name}/{split}.csv"

#: Published number of structures per split (CDVAE paper and repository).
CDVAE_SIZES: dict[str, dict[str, int]] = {
    "perov_5": {"train": 11356, "val": 3787, "test": 3785},
    "carbon_24": {"train": 6091, "val": 2032, "test": 2030},
    "mp_20": {"train": 27136, "val": 9047, "test": 9046},
}

#: SHA-256 of the split files at :data:`CDVAE_COMMIT` whose bytes labkit has checked: the
#: official validation splits of perov-5 and carbon-24 (the files the shipped samples in
#: ``labkit/atoms/data`` were cut from). The other seven splits (the train and test splits,
#: and all of MP-20) have no entry: their bytes have not been available to labkit, so a
#: checksum cannot be recorded honestly, and :func:`load_cdvae` refuses to download them
#: (or to read them from the cache) unless the caller passes ``sha256=`` or ``root=``.
CDVAE_SHA256: dict[tuple[str, str], str] = {
    ("perov_5", "val"): "326f401219901270374b71e2faff63df3a29a99fd26f469993b9f476b693daf2",
    ("carbon_24", "val"): "36c00689cd63073c954a58bc6ed6e2adb7aeed5a630c994970959a1babffd50e",
}

SPLITS = ("train", "val", "test")
#: CSV columns that are not numeric properties.
_TEXT_COLUMNS = ("", "cif", "material_id", "formula")


@dataclasses.dataclass(frozen=True)
class CrystalDataset:
    """Structures of one benchmark split.

    Attributes:
        name: ``"perov_5"``, ``"carbon_24"``, ``"mp_20"`` or a user's name.
        split: ``"train"``, ``"val"``, ``"test"``, or a re-split's label such as
            ``"labkit-test (seed 0) of val"``.
        official: True only for an unmodified official split.
        structures: the crystals, in file order.
        properties: numeric columns of the CSV, ``{column: [B] float64}`` (NaN where empty).
        formulas: the ``formula`` column (or ``""``).
        source: the file (or URL) the data came from.
    """

    name: str
    split: str
    official: bool
    structures: AtomsBatch
    properties: dict[str, np.ndarray]
    formulas: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.structures)

    @property
    def label(self) -> str:
        """How to cite this split next to a number."""
        kind = "official split" if self.official else "NOT an official split"
        return f"{self.name}/{self.split} ({len(self)} structures, {kind})"

    def subset(self, index: Any, *, split: str | None = None) -> CrystalDataset:
        """The structures at ``index`` (labelled not official unless it is everything)."""
        rows = torch.arange(len(self))[index].reshape(-1)
        whole = len(rows) == len(self) and bool((rows == torch.arange(len(self))).all())
        return CrystalDataset(
            name=self.name, split=split or (self.split if whole else f"subset of {self.split}"),
            official=self.official and whole, structures=self.structures[rows],
            properties={k: v[rows.numpy()] for k, v in self.properties.items()},
            formulas=tuple(self.formulas[int(i)] for i in rows), source=self.source)


def _unknown_checksum(name: str, split: str, url: str) -> DataError:
    return DataError(
        f"the SHA-256 of {name}/{split}.csv (CDVAE commit {CDVAE_COMMIT[:12]}) is not yet known to labkit, "
        f"so it is neither downloaded nor read from the cache unchecked. To use the file anyway: download "
        f"{url} yourself, put it at <folder>/{name}/{split}.csv and pass root=<folder> (or set "
        f"LABKIT_CDVAE_ROOT=<folder>): a file under root is read as it is, without a checksum; or pass "
        f"sha256=<the file's SHA-256, from a source you trust> to download it and check it against that")


def _locate(name: str, split: str, root: str | os.PathLike[str] | None, cache_dir: Path | None,
            download: bool, sha256: str | None) -> Path:
    if root is None:
        root = os.environ.get("LABKIT_CDVAE_ROOT")
    if root is not None:
        path = Path(root) / name / f"{split}.csv"
        if not path.is_file():
            raise DataError(f"no {name}/{split}.csv under root {root} (expected {path})")
        return path
    url = _URL.format(commit=CDVAE_COMMIT, name=name, split=split)
    known = CDVAE_SHA256.get((name, split))
    if sha256 is not None and known is not None and sha256 != known:
        raise ConfigError(f"sha256 {sha256!r} for {name}/{split} differs from the checksum labkit records "
                          f"for it ({known}); leave sha256 out")
    expected = sha256 if sha256 is not None else known
    if expected is None:
        raise _unknown_checksum(name, split, url)
    dest = (cache_dir or default_cache_dir() / "cdvae") / name / f"{split}.csv"
    if dest.is_file() or download:
        return fetch(url, dest, sha256=expected)  # a cache hit is hashed and checked too
    raise DataError(f"{name}/{split} is not in the cache ({dest}) and download=False")


def read_split(path: str | os.PathLike[str], *, limit: int | None = None,
               dtype: torch.dtype = torch.float64) -> tuple[AtomsBatch, dict[str, np.ndarray], tuple[str, ...]]:
    """Structures, numeric properties and formulas of a CDVAE-format CSV.

    Raises:
        DataError: a missing ``cif`` column, or a row whose CIF does not parse (the
            message names the row).
    """
    from labkit.atoms.io import ase_to_arrays, read_cif

    if limit is not None:
        check_int("limit", limit)
    p = Path(path)
    triples, ids, formulas = [], [], []
    columns: dict[str, list[float]] = {}
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        if "cif" not in fields:
            raise DataError(f"{p} has no 'cif' column; columns: {fields}")
        numeric = [c for c in fields if c not in _TEXT_COLUMNS]
        for c in numeric:
            columns[c] = []
        for i, row in enumerate(reader):
            if limit is not None and i >= limit:
                break
            triples.append(ase_to_arrays(read_cif(row["cif"], row=i), index=i))
            ids.append(row.get("material_id") or str(i))
            formulas.append(row.get("formula") or "")
            for c in numeric:
                try:
                    columns[c].append(float(row[c]) if row[c] not in ("", None) else math.nan)
                except ValueError:
                    columns[c].append(math.nan)
    if not triples:
        raise DataError(f"{p} has no rows")
    props = {c: np.asarray(v, dtype=np.float64) for c, v in columns.items()
             if not np.isnan(np.asarray(v, dtype=np.float64)).all()}
    return AtomsBatch.from_arrays(triples, ids=ids, dtype=dtype).wrapped(), props, tuple(formulas)


def load_cdvae(
    name: str = "perov_5",
    split: str = "val",
    *,
    root: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    limit: int | None = None,
    dtype: torch.dtype = torch.float64,
    sha256: str | None = None,
) -> CrystalDataset:
    """One official split of a CDVAE benchmark.

    Args:
        name: ``"perov_5"``, ``"carbon_24"`` or ``"mp_20"``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        root: a folder holding ``<name>/<split>.csv`` (no download); default
            ``$LABKIT_CDVAE_ROOT`` if set, else the cache.
        cache_dir: where downloads go (default ``<labkit cache>/cdvae``).
        download: fetch a missing file (checked against its SHA-256).
        limit: read only the first ``limit`` rows (the result is then not official).
        dtype: of the coordinates and lattices.
        sha256: the file's SHA-256, for a split without one in :data:`CDVAE_SHA256`
            (the download and every cache hit are checked against it); for a split with
            one it may only repeat it. Not used with ``root``.

    Raises:
        ConfigError: an unknown name or split, a malformed ``sha256``, or one that
            contradicts labkit's record.
        DataError: a missing file; a split whose checksum labkit does not know (and no
            ``sha256`` or ``root`` given: the message says how to use the file anyway);
            a failed or corrupted download, or a cached file whose bytes do not match
            (naming the file and both hashes); a CIF that does not parse (naming the
            row); or a full split whose size differs from the published one.

    Example (``root``: any folder holding ``perov_5/val.csv``)::

        ds = load_cdvae("perov_5", "val", root="/path/to/cdvae", limit=4)
        ds.label  # 'perov_5/first 4 of val (4 structures, NOT an official split)'
    """
    check_in("name", name, tuple(CDVAE_SIZES))
    check_in("split", split, SPLITS)
    if sha256 is not None:
        check_sha256(sha256)
    path = _locate(name, split, root, Path(cache_dir) if cache_dir is not None else None, download, sha256)
    batch, props, formulas = read_split(path, limit=limit, dtype=dtype)
    expected = CDVAE_SIZES[name][split]
    whole = limit is None or limit >= expected
    if whole and len(batch) != expected:
        raise DataError(f"{path} has {len(batch)} structures; the published {name}/{split} has {expected}")
    return CrystalDataset(name=name, split=split if whole else f"first {len(batch)} of {split}",
                          official=whole, structures=batch, properties=props, formulas=formulas,
                          source=str(path))


def load_sample(name: str = "perov_5", *, dtype: torch.dtype = torch.float64) -> CrystalDataset:
    """The structures labkit ships for ``name``: the first 400 (perov-5) or 24 (carbon-24)
    rows of the official validation split (``labkit/atoms/data``). Runs anywhere, no
    download; not an official split."""
    check_in("name", name, ("perov_5", "carbon_24"))
    path = Path(__file__).parent / "data" / f"{name}_sample.csv"
    batch, props, formulas = read_split(path, dtype=dtype)
    return CrystalDataset(name=name, split=f"first {len(batch)} of val (shipped sample)", official=False,
                          structures=batch, properties=props, formulas=formulas, source=str(path))


def resplit(
    dataset: CrystalDataset,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    *,
    seed: int = 0,
) -> dict[str, CrystalDataset]:
    """A seeded random train/val/test partition of ``dataset``, labelled as not official.

    Args:
        dataset: what to split.
        fractions: shares of train, val and test (positive, summing to 1).
        seed: of the permutation. An int only (not a generator or ``None``): it is
            written into each part's label, so a number measured on a re-split names
            how to rebuild it.

    Returns:
        ``{"train": ..., "val": ..., "test": ...}``; each ``split`` reads e.g.
        ``"labkit-test (seed 0) of val"`` and ``official`` is False.
    """
    if len(fractions) != 3 or any(not (f > 0) for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ConfigError(f"fractions must be three positive numbers summing to 1, got {fractions!r}")
    n = len(dataset)
    if n < 3:
        raise ConfigError(f"resplit needs at least 3 structures, got {n}")
    perm = torch.randperm(n, generator=make_generator(seed))
    n_train = max(1, round(fractions[0] * n))
    n_val = max(1, round(fractions[1] * n))
    n_train = min(n_train, n - 2)
    n_val = min(n_val, n - n_train - 1)
    parts = {"train": perm[:n_train], "val": perm[n_train:n_train + n_val], "test": perm[n_train + n_val:]}
    origin = dataset.split
    return {k: dataclasses.replace(dataset.subset(torch.sort(v).values,
                                                  split=f"labkit-{k} (seed {seed}) of {origin}"),
                                   official=False)
            for k, v in parts.items()}


def benchmark_splits(
    name: str = "perov_5",
    data: str | os.PathLike[str] = "sample",
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[CrystalDataset, CrystalDataset]:
    """``(train, test)`` for a crystal-generation experiment, always labelled honestly.

    Args:
        name: the benchmark.
        data: ``"sample"``: a seeded 80/10/10 re-split of the structures labkit ships
            (:func:`load_sample`); ``"download"``: the official train and test splits,
            fetched into the cache (a :class:`DataError` while labkit knows no checksum
            for them, see :data:`CDVAE_SHA256`); a folder: its ``<name>/train.csv`` and ``test.csv``
            when both exist (official), else a re-split of its ``<name>/val.csv``.
        seed: of a re-split (an int: it goes into the label, see :func:`resplit`).
        cache_dir: for ``"download"``.
    """
    check_in("name", name, tuple(CDVAE_SIZES))
    if str(data) == "sample":
        parts = resplit(load_sample(name), seed=seed)
        return parts["train"], parts["test"]
    if str(data) == "download":
        return (load_cdvae(name, "train", cache_dir=cache_dir),
                load_cdvae(name, "test", cache_dir=cache_dir))
    root = Path(data)
    if not root.is_dir():
        raise ConfigError(f"data must be 'sample', 'download' or a folder of CDVAE CSVs, got {str(data)!r} "
                          f"(not a folder from {Path.cwd()})")
    if (root / name / "train.csv").is_file() and (root / name / "test.csv").is_file():
        return load_cdvae(name, "train", root=root), load_cdvae(name, "test", root=root)
    parts = resplit(load_cdvae(name, "val", root=root), seed=seed)
    return parts["train"], parts["test"]
