"""Leaflet for the offline HTML maps, taken from the npm registry package at build time.

``npm pack leaflet@<version>`` downloads the package tarball (the ordinary npm client, by package
name), its sha512 integrity is checked against the settings, and ``leaflet.js``, ``leaflet.css`` and
the layer-control icons are extracted to ``data/raw/vendor/leaflet-<version>/``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from ..errors import PipelineError
from ..io import atomic_path

FILES = [
    "dist/leaflet.js",
    "dist/leaflet.css",
    "dist/images/layers.png",
    "dist/images/layers-2x.png",
]


def integrity_of(path: Path) -> str:
    """Npm's integrity string (``sha512-<base64>``) of a file."""
    return "sha512-" + base64.b64encode(hashlib.sha512(Path(path).read_bytes()).digest()).decode()


def leaflet_dir(raw_dir: Path, version: str) -> Path:
    """The folder of ``data/raw`` holding Leaflet ``version``: script, style sheet and icons."""
    return Path(raw_dir) / "vendor" / f"leaflet-{version}"


def npm_package(
    spec: str,
    *,
    integrity: str,
    setting: str,
    files: list[str],
    out: Path,
    tarball: Path | None = None,
) -> Path:
    """Extract ``files`` of an npm package into ``out`` (flat), once, checked against ``integrity``.

    ``npm pack <spec>`` downloads the package tarball by name (the ordinary npm client); its sha512
    integrity is compared with the pinned value before anything is extracted.

    Parameters
    ----------
    spec : str
        ``name@version``.
    integrity : str
        npm's ``sha512-<base64>`` of the tarball.
    setting : str
        The settings section pinning the package, for the messages (``[maps]``).
    files : list of str
        Paths inside the package (without the leading ``package/``).
    out : path
        Folder receiving the files (under their base names).
    tarball : path, optional
        A tarball already on disk instead of running ``npm pack``.

    Raises
    ------
    PipelineError
        npm missing or failing, a tarball whose integrity differs, or a file missing from it.
    """
    if all((out / Path(f).name).exists() for f in files):
        return out
    with tempfile.TemporaryDirectory() as tmp:
        if tarball is None:
            npm = shutil.which("npm")
            if npm is None:
                raise PipelineError(
                    f"npm not found: {spec} is taken from its npm package; install Node.js "
                    f"and npm (Debian: apt-get install npm) or put the tarball of {spec} "
                    f"in {out.parent} and run again"
                )
            done = subprocess.run(
                [npm, "pack", spec, "--json", "--pack-destination", tmp],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise PipelineError(
                    f"npm pack {spec} failed ({done.stderr.strip()[-300:]}); check that "
                    "the npm registry is reachable"
                )
            tarball = Path(tmp) / json.loads(done.stdout)[0]["filename"]
        actual = integrity_of(tarball)
        if actual != integrity:
            raise PipelineError(
                f"{tarball}: integrity {actual[:30]}… differs from the one pinned in {setting}; "
                "the package is not the pinned release: check the version and integrity settings"
            )
        with tarfile.open(tarball, "r:gz") as archive:
            for name in files:
                try:
                    member = archive.extractfile(f"package/{name}")
                except KeyError:
                    member = None
                if member is None:
                    raise PipelineError(f"{tarball}: has no {name}; check the version in {setting}")
                with atomic_path(out / Path(name).name) as target:
                    target.write_bytes(member.read())
    return out


def fetch_leaflet(
    raw_dir: Path, *, version: str, integrity: str, tarball: Path | None = None
) -> Path:
    """Make Leaflet's files available under ``data/raw/vendor``; return their folder.

    Parameters
    ----------
    tarball : path, optional
        A ``leaflet-<version>.tgz`` already on disk instead of running ``npm pack``.

    Raises
    ------
    PipelineError
        npm missing or failing, or a tarball whose integrity differs.
    """
    return npm_package(
        f"leaflet@{version}",
        integrity=integrity,
        setting="[maps] leaflet_integrity",
        files=FILES,
        out=leaflet_dir(raw_dir, version),
        tarball=tarball,
    )


def inline_assets(folder: Path) -> tuple[str, str]:
    """Leaflet's JavaScript and its CSS with the icons inlined as data URIs."""
    css = (folder / "leaflet.css").read_text(encoding="utf-8")
    for icon in ("layers-2x.png", "layers.png"):
        data = base64.b64encode((folder / icon).read_bytes()).decode()
        css = css.replace(f"images/{icon}", f"data:image/png;base64,{data}")
    return (folder / "leaflet.js").read_text(encoding="utf-8"), css
