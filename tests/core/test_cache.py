import os

import pytest

from labkit.core import FileCache, atomic_open, atomic_write, stable_hash


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "a.json"
    atomic_write(target, "one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_interrupted_write_keeps_old_content(tmp_path):
    target = tmp_path / "report.html"
    atomic_write(target, "old")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["report.html"]


def test_stable_hash_ignores_key_order_but_not_types():
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 1.0})
    assert len(stable_hash("x", length=8)) == 8


def test_file_cache_computes_once(tmp_path):
    cache = FileCache(tmp_path)
    calls = []

    def make():
        calls.append(1)
        return b"payload"

    assert cache.get_or_create({"k": 1}, make) == b"payload"
    assert cache.get_or_create({"k": 1}, make) == b"payload"
    assert len(calls) == 1
    assert cache.get({"k": 2}) is None


def test_default_cache_dir_env(monkeypatch, tmp_path):
    from labkit.core import default_cache_dir

    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    assert FileCache().root == tmp_path
