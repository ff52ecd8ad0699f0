"""Every file labkit fetches is checked against a SHA-256 known in advance: no trust on
first use, a cache hit is hashed again and a tampered file refused (naming the file and
both hashes), a split without a recorded checksum is refused with a message that says
how to use it anyway. Downloads go through file:// URLs: nothing leaves the machine."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

import labkit.atoms.datasets as datasets
from labkit.atoms import load_cdvae
from labkit.core.download import fetch, sha256_file
from labkit.errors import ConfigError, DataError

LABKIT = Path(__file__).resolve().parents[2] / "labkit"


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "source" / "payload.csv"
    path.parent.mkdir()
    path.write_bytes(b"a,b\n1,2\n" * 500)
    return path


def test_fetch_downloads_and_checks(tmp_path, payload):
    dest = tmp_path / "cache" / "file.csv"
    right = sha256_file(payload)
    assert fetch(payload.as_uri(), dest, sha256=right) == dest
    assert dest.read_bytes() == payload.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.csv"]  # no side record


def test_fetch_requires_a_checksum(tmp_path, payload):
    dest = tmp_path / "cache" / "file.csv"
    with pytest.raises(TypeError):
        fetch(payload.as_uri(), dest)  # type: ignore[call-arg]
    for bad in (None, "", "abc", "A" * 64, "g" * 64, "0" * 63):
        with pytest.raises(ConfigError, match="sha256 must be 64 lowercase hex digits, got"):
            fetch(payload.as_uri(), dest, sha256=bad)  # type: ignore[arg-type]
    assert not dest.parent.exists()  # nothing downloaded without a checksum


def test_a_tampered_cache_hit_is_refused(tmp_path, payload):
    dest = tmp_path / "cache" / "file.csv"
    right = sha256_file(payload)
    fetch(payload.as_uri(), dest, sha256=right)
    dest.write_bytes(b"a,b\n6,6\n")
    wrong = hashlib.sha256(b"a,b\n6,6\n").hexdigest()
    with pytest.raises(DataError) as info:
        fetch(payload.as_uri(), dest, sha256=right)
    msg = str(info.value)
    assert str(dest) in msg and f"expected sha256 {right}" in msg and f"got {wrong}" in msg
    assert dest.read_bytes() == b"a,b\n6,6\n"  # refused, not silently replaced


def test_a_file_placed_in_the_cache_is_not_trusted(tmp_path, payload):
    """A file put into the cache by hand (or left by an older labkit that trusted its first
    download, with its ``.sha256`` record) is checked like any other."""
    dest = tmp_path / "cache" / "file.csv"
    dest.parent.mkdir()
    dest.write_bytes(b"planted")
    (dest.parent / "file.csv.sha256").write_text(hashlib.sha256(b"planted").hexdigest() + "\n")
    with pytest.raises(DataError, match=re.escape(f"cached file {dest} does not match its checksum")):
        fetch(payload.as_uri(), dest, sha256=sha256_file(payload))


def test_a_corrupted_download_leaves_nothing(tmp_path, payload):
    dest = tmp_path / "cache" / "file.csv"
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(DataError, match=f"checksum mismatch for .*: expected sha256 {wrong}, got "
                                        f"{sha256_file(payload)}"):
        fetch(payload.as_uri(), dest, sha256=wrong)
    assert list(dest.parent.iterdir()) == []


def test_the_checksum_table_is_well_formed():
    assert datasets.CDVAE_SHA256, "no checksums recorded"
    for (name, split), digest in datasets.CDVAE_SHA256.items():
        assert name in datasets.CDVAE_SIZES and split in datasets.SPLITS
        assert re.fullmatch(r"[0-9a-f]{64}", digest), (name, split, digest)


def test_the_shared_files_match_their_recorded_checksums(shared_data):
    files = sorted((shared_data / "cdvae").glob("*/*.csv"))
    assert files, f"no CDVAE CSVs under {shared_data / 'cdvae'}"
    for path in files:
        key = (path.parent.name, path.stem)
        assert key in datasets.CDVAE_SHA256, f"{path} has bytes but no recorded checksum"
        assert sha256_file(path) == datasets.CDVAE_SHA256[key], path


UNKNOWN = sorted({(n, s) for n in datasets.CDVAE_SIZES for s in datasets.SPLITS} - set(datasets.CDVAE_SHA256))


@pytest.mark.parametrize(("name", "split"), UNKNOWN)
def test_a_split_without_a_checksum_is_refused_clearly(name, split, tmp_path, monkeypatch):
    monkeypatch.delenv("LABKIT_CDVAE_ROOT", raising=False)
    calls = []
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: calls.append(a))
    with pytest.raises(DataError) as info:
        load_cdvae(name, split, cache_dir=tmp_path)
    msg = str(info.value)
    assert f"SHA-256 of {name}/{split}.csv" in msg and "not yet known to labkit" in msg
    assert "root=" in msg and "LABKIT_CDVAE_ROOT" in msg and "sha256=" in msg
    assert calls == [] and list(tmp_path.iterdir()) == []


def test_a_cached_split_without_a_checksum_is_not_read(tmp_path, monkeypatch):
    """The bug of issue 15: a file already in the cache was accepted unchecked."""
    monkeypatch.delenv("LABKIT_CDVAE_ROOT", raising=False)
    name, split = UNKNOWN[0]
    planted = tmp_path / name / f"{split}.csv"
    planted.parent.mkdir()
    planted.write_text("material_id,cif\n")
    (planted.parent / f"{split}.csv.sha256").write_text(sha256_file(planted) + "\n")  # old TOFU record
    with pytest.raises(DataError, match="not yet known to labkit"):
        load_cdvae(name, split, cache_dir=tmp_path)


def test_a_user_checksum_or_root_lets_an_unrecorded_split_in(tmp_path, monkeypatch, shared_data):
    """Stand-in bytes (the carbon-24 validation CSV, served as if it were another split)
    show both ways around the refusal."""
    monkeypatch.delenv("LABKIT_CDVAE_ROOT", raising=False)
    src = shared_data / "cdvae" / "carbon_24" / "val.csv"
    served = tmp_path / "served" / "carbon_24" / "test.csv"
    served.parent.mkdir(parents=True)
    shutil.copy(src, served)
    assert ("carbon_24", "test") not in datasets.CDVAE_SHA256
    monkeypatch.setattr(datasets, "_URL", (tmp_path / "served").as_uri() + "/{name}/{split}.csv")
    digest = sha256_file(src)
    cache = tmp_path / "cache"
    ds = load_cdvae("carbon_24", "test", cache_dir=cache, sha256=digest, limit=3)
    assert len(ds) == 3 and (cache / "carbon_24" / "test.csv").is_file()
    # the cache hit is checked against the user's checksum as well
    (cache / "carbon_24" / "test.csv").write_text("tampered")
    with pytest.raises(DataError, match=f"expected sha256 {digest}, got "):
        load_cdvae("carbon_24", "test", cache_dir=cache, sha256=digest, limit=3)
    with pytest.raises(ConfigError, match="sha256 must be 64 lowercase hex digits"):
        load_cdvae("carbon_24", "test", cache_dir=cache, sha256="nope")
    # a checksum that contradicts labkit's own record is refused
    with pytest.raises(ConfigError, match="differs from the checksum labkit records"):
        load_cdvae("carbon_24", "val", cache_dir=cache, sha256=digest[::-1])
    # root= (or $LABKIT_CDVAE_ROOT) reads the file as it is, with no checksum and no download
    assert len(load_cdvae("carbon_24", "test", root=tmp_path / "served", limit=2)) == 2
    monkeypatch.setenv("LABKIT_CDVAE_ROOT", str(tmp_path / "served"))
    assert len(load_cdvae("carbon_24", "test", limit=2)) == 2


def test_labkit_downloads_only_through_fetch():
    """Every way labkit reaches the network goes through labkit.core.download.fetch, and
    every call of fetch passes a checksum."""
    pattern = re.compile(r"\burlopen\b|\burlretrieve\b|\brequests\.|\bhttpx\b|\burllib3\b|"
                         r"torch\.hub|hf_hub_download|\bMPRester\b|\bload_dataset\(")
    offenders = []
    for path in sorted(LABKIT.rglob("*.py")):
        text = path.read_text()
        rel = path.relative_to(LABKIT.parent).as_posix()
        if rel != "labkit/core/download.py":
            offenders += [f"{rel}: {m.group(0)}" for m in pattern.finditer(text)]
        for call in re.finditer(r"\bfetch\(([^()]*(?:\([^()]*\)[^()]*)*)\)", text):
            if rel != "labkit/core/download.py" and "sha256=" not in call.group(1):
                offenders.append(f"{rel}: fetch without sha256: {call.group(0)}")
    assert offenders == []
