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

from .errors import PipelineError
from .io import atomic_path

FILES = ["dist/leaflet.js", "dist/leaflet.css", "dist/images/layers.png", "dist/images/layers-2x.png"]


def integrity_of(path: Path) -> str:
    """npm's integrity string (``sha512-<base64>``) of a file."""
    return "sha512-" + base64.b64encode(hashlib.sha512(Path(path).read_bytes()).digest()).decode()


def leaflet_dir(raw_dir: Path, version: str) -> Path:
    return Path(raw_dir) / "vendor" / f"leaflet-{version}"


def fetch_leaflet(raw_dir: Path, *, version: str, integrity: str, tarball: Path | None = None) -> Path:
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
    out = leaflet_dir(raw_dir, version)
    if all((out / Path(f).name).exists() for f in FILES):
        return out
    with tempfile.TemporaryDirectory() as tmp:
        if tarball is None:
            npm = shutil.which("npm")
            if npm is None:
                raise PipelineError("npm not found: the maps embed Leaflet from its npm package; install Node.js "
                                    "and npm (Debian: apt-get install npm) or put leaflet-"
                                    f"{version}.tgz in {out.parent} and run again")
            done = subprocess.run([npm, "pack", f"leaflet@{version}", "--json", "--pack-destination", tmp],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise PipelineError(f"npm pack leaflet@{version} failed ({done.stderr.strip()[-300:]}); check that "
                                    "the npm registry is reachable")
            tarball = Path(tmp) / json.loads(done.stdout)[0]["filename"]
        actual = integrity_of(tarball)
        if actual != integrity:
            raise PipelineError(f"{tarball}: integrity {actual[:30]}… differs from [maps] leaflet_integrity; the "
                                "package is not the pinned release: check the version and integrity settings")
        with tarfile.open(tarball, "r:gz") as archive:
            for name in FILES:
                member = archive.extractfile(f"package/{name}")
                if member is None:
                    raise PipelineError(f"{tarball}: has no {name}; check [maps] leaflet_version")
                with atomic_path(out / Path(name).name) as target:
                    target.write_bytes(member.read())
    return out


def inline_assets(folder: Path) -> tuple[str, str]:
    """Leaflet's JavaScript and its CSS with the icons inlined as data URIs."""
    css = (folder / "leaflet.css").read_text(encoding="utf-8")
    for icon in ("layers-2x.png", "layers.png"):
        data = base64.b64encode((folder / icon).read_bytes()).decode()
        css = css.replace(f"images/{icon}", f"data:image/png;base64,{data}")
    return (folder / "leaflet.js").read_text(encoding="utf-8"), css
