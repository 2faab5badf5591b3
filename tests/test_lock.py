"""The lock files (requirements/*.txt) pin what pyproject.toml asks for: every dependency of the
extras they serve, at one exact version that the declared bound allows, with PyPI hashes, and
the same version of a package in every file."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import REPO

LOCKS = {"runtime": [], "test": ["test"], "bench": ["test", "bench"]}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def pins(name: str) -> dict[str, tuple[str, int]]:
    """Package → (version, number of hashes) of ``requirements/<name>.txt``."""
    found: dict[str, tuple[str, int]] = {}
    current = None
    for line in (REPO / "requirements" / f"{name}.txt").read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match[1])
            found[current] = (match[2], 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
        elif line and not line.startswith(" "):
            current = None
    return found


def declared(extras: list[str]) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = list(project["dependencies"])
    for extra in extras:
        names += project["optional-dependencies"][extra]
    build = (REPO / "requirements" / "build.in").read_text(encoding="utf-8").splitlines()
    names += [line for line in build if line.strip() and not line.startswith("#")]
    return [Requirement(n) for n in names]


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_lock_pins_every_declared_dependency_within_its_bound(lock):
    locked = pins(lock)
    for requirement in declared(LOCKS[lock]):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in requirements/{lock}.txt: run `make lock`"
        version = locked[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements/{lock}.txt pins {name}=={version}, outside {requirement}: "
            "run `make lock`"
        )
    unhashed = [name for name, (_, hashes) in locked.items() if hashes == 0]
    assert not unhashed, f"requirements/{lock}.txt: no hash for {unhashed}"


def test_locks_agree_on_every_shared_version():
    versions = {lock: pins(lock) for lock in LOCKS}
    bench = versions["bench"]
    for lock in ("runtime", "test"):
        differ = {
            name: (version, bench.get(name, (None,))[0])
            for name, (version, _) in versions[lock].items()
            if bench.get(name, (None,))[0] != version
        }
        assert not differ, f"requirements/{lock}.txt and bench.txt differ: {differ}"
    assert set(versions["runtime"]) <= set(versions["test"]) <= set(bench)
