"""CDVAE loader: the official validation splits read from ../shared/data, published sizes
checked, checksummed downloads (through file:// URLs: nothing leaves the machine), cache
hits, and seeded re-splits that say they are not official."""

from __future__ import annotations

import csv
import hashlib

import pytest
import torch

import labkit.atoms.datasets as datasets
from labkit.atoms import benchmark_splits, load_cdvae, load_sample, resplit
from labkit.core.download import fetch, sha256_file
from labkit.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def perov(shared_data):
    return load_cdvae("perov_5", "val", root=shared_data / "cdvae")


def test_official_perov5_val(perov, shared_data):
    assert perov.official and len(perov) == 3787 and perov.label == "perov_5/val (3787 structures, official split)"
    assert (perov.structures.n_atoms == 5).all()
    assert sorted(perov.properties) == ["dir_gap", "heat_all", "heat_ref", "ind_gap"]
    assert perov.formulas[0] and perov.structures.ids[0] != "0"
    f = perov.structures.frac
    assert (f >= 0).all() and (f < 1).all()
    # the shipped sample is the first 400 rows of this file
    sample = load_sample("perov_5")
    assert not sample.official and len(sample) == 400
    torch.testing.assert_close(sample.structures.lattice, perov.structures.lattice[:400])
    assert sample.structures.ids == perov.structures.ids[:400]


def test_carbon24_val_and_limit(shared_data):
    ds = load_cdvae("carbon_24", "val", root=shared_data / "cdvae", limit=50)
    assert len(ds) == 50 and not ds.official and ds.split == "first 50 of val"
    assert ds.structures.n_atoms.min() >= 6 and ds.structures.n_atoms.max() <= 24
    assert set(ds.structures.species[ds.structures.mask].tolist()) == {6}


def test_resplit_is_seeded_disjoint_and_not_official(perov):
    parts = resplit(perov, seed=3)
    again = resplit(perov, seed=3)
    other = resplit(perov, seed=4)
    ids = {k: set(v.structures.ids) for k, v in parts.items()}
    assert sum(len(v) for v in parts.values()) == len(perov)
    assert not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    assert ids["test"] == set(again["test"].structures.ids) != set(other["test"].structures.ids)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [3030, 379, 378] and not parts["test"].official
    assert "NOT an official split" in parts["test"].label and "seed 3" in parts["test"].label
    with pytest.raises(ConfigError, match=r"fractions must be three positive numbers summing to 1, got \(0.5, 0.5\)"):
        resplit(perov, (0.5, 0.5))


def test_size_check_and_bad_names(tmp_path, shared_data):
    (tmp_path / "perov_5").mkdir()
    src = shared_data / "cdvae" / "perov_5" / "val.csv"
    with src.open(newline="") as fh, (tmp_path / "perov_5" / "val.csv").open("w", newline="") as out:
        reader = csv.DictReader(fh)
        writer = csv.DictWriter(out, reader.fieldnames)
        writer.writeheader()
        writer.writerow(next(reader))
    with pytest.raises(DataError, match="has 1 structures; the published perov_5/val has 3787"):
        load_cdvae("perov_5", "val", root=tmp_path)
    with pytest.raises(ConfigError, match=r"name must be one of \['perov_5', 'carbon_24', 'mp_20'\], got 'perov5'"):
        load_cdvae("perov5", root=tmp_path)
    with pytest.raises(ConfigError, match="split must be one of"):
        load_cdvae("perov_5", "training", root=tmp_path)
    with pytest.raises(DataError, match="no carbon_24/val.csv under root"):
        load_cdvae("carbon_24", "val", root=tmp_path)


def test_bad_cif_names_the_row(tmp_path):
    (tmp_path / "perov_5").mkdir()
    (tmp_path / "perov_5" / "test.csv").write_text('material_id,cif\nm0,"data_x\n_cell_length_a 4\n"\n')
    with pytest.raises(DataError, match=r"\(row 0\)"):
        load_cdvae("perov_5", "test", root=tmp_path)


def test_download_checks_sha256_and_caches(tmp_path, shared_data, monkeypatch):
    src = shared_data / "cdvae" / "carbon_24" / "val.csv"
    good = sha256_file(src)
    assert good == datasets.CDVAE_SHA256[("carbon_24", "val")]
    url = src.resolve().as_uri()
    monkeypatch.setattr(datasets, "_URL", url.replace("carbon_24/val.csv", "{name}/{split}.csv"))
    ds = load_cdvae("carbon_24", "val", cache_dir=tmp_path, limit=3)
    assert (tmp_path / "carbon_24" / "val.csv").is_file() and len(ds) == 3
    calls = []
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: calls.append(a))
    load_cdvae("carbon_24", "val", cache_dir=tmp_path, limit=3)  # cache hit: no download
    assert calls == []
    with pytest.raises(DataError, match="not in the cache .* and download=False"):
        load_cdvae("perov_5", "val", cache_dir=tmp_path, download=False)


def test_fetch_refuses_a_corrupted_file_and_keeps_nothing(tmp_path):
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"labkit" * 1000)
    wrong = hashlib.sha256(b"something else").hexdigest()
    dest = tmp_path / "cache" / "file.bin"
    with pytest.raises(DataError, match=f"checksum mismatch for .*: expected sha256 {wrong}, got"):
        fetch(payload.as_uri(), dest, sha256=wrong)
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    right = sha256_file(payload)
    assert fetch(payload.as_uri(), dest, sha256=right) == dest and dest.read_bytes() == payload.read_bytes()
    # a cached file that no longer matches is reported, not used
    dest.write_bytes(b"tampered")
    with pytest.raises(DataError, match="does not match its checksum"):
        fetch(payload.as_uri(), dest, sha256=right)
    with pytest.raises(DataError, match="could not download"):
        fetch((tmp_path / "missing").as_uri(), tmp_path / "x.bin", sha256=right)
    with pytest.raises(ConfigError, match="sha256 must be 64 lowercase hex digits, got 'abc'"):
        fetch(payload.as_uri(), dest, sha256="abc")


def test_benchmark_splits_say_what_they_are(shared_data, tmp_path):
    train, test = benchmark_splits("perov_5", "sample", seed=1)
    assert (len(train), len(test)) == (320, 40) and not train.official and not test.official
    assert not set(train.structures.ids) & set(test.structures.ids)
    assert "shipped sample" in test.label and "NOT an official split" in test.label
    train, test = benchmark_splits("carbon_24", shared_data / "cdvae")  # only val.csv there
    assert (len(train), len(test)) == (1626, 203) and "labkit-test (seed 0) of val" in test.label
    with pytest.raises(ConfigError, match="data must be 'sample', 'download' or a folder of CDVAE CSVs, got 'nowhere'"):
        benchmark_splits("perov_5", "nowhere")
