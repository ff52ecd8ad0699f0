"""pyproject.toml, environment.yml and binder/ describe the same environment."""

from __future__ import annotations

import re
import tomllib

import yaml


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pip_names(path) -> list[str]:
    env = yaml.safe_load(path.read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return [_name(r) for r in pip if not r.startswith("-")]


def test_environment_files_list_pyproject_dependencies(repo):
    deps = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]
    names = sorted(_name(d) for d in deps)
    assert sorted(_pip_names(repo / "environment.yml")) == names
    assert sorted(_pip_names(repo / "binder" / "environment.yml")) == names


def test_torch_is_pinned_everywhere(repo):
    for path in (repo / "environment.yml", repo / "binder" / "environment.yml"):
        assert "torch==2.13.0" in path.read_text()
    assert re.search(r"^torch==2\.13\.0$", (repo / "constraints.txt").read_text(), re.M)


def test_constraints_pin_every_dependency(repo):
    deps = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    wanted = {_name(d) for d in deps["dependencies"] + deps["optional-dependencies"]["test"]}
    pinned = {_name(line) for line in (repo / "constraints.txt").read_text().splitlines()
              if line and not line.startswith("#")}
    assert wanted - {"dask"} <= pinned and "dask" in pinned


def test_binder_installs_labkit(repo):
    post = (repo / "binder" / "postBuild").read_text()
    assert "pip install --no-deps -e ." in post
    assert (repo / "binder" / "postBuild").stat().st_mode & 0o111
    env = yaml.safe_load((repo / "binder" / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
