"""Realism of the candidate territories on real CPTS: leave one département out.

The development set (``bench/data/cpts_paca_dev.csv``, provenance in ``bench/data/README.md``)
lists the communes of 35 real CPTS of the Alpes-de-Haute-Provence, Hautes-Alpes, Alpes-Maritimes
and Vaucluse. For each of these départements in turn, the CPTS whose main département it is are
left out of the perimeter file, the pipeline runs over région 93 with the others (communes,
perimeters, coverage), and the candidate territories proposed for the white zones are compared,
on the communes of the hidden CPTS only, with the CPTS professionals really formed there:

* count ratio: candidates (territories holding most of their white population in hidden
  communes) / hidden CPTS;
* median population ratio, and the ACI tier distribution of each;
* adjusted Rand index and adjusted mutual information (scikit-learn) of the two partitions of the
  hidden communes;
* best-match share: for each real CPTS, the share of its population held by the candidate that
  holds most of it (mean over the CPTS).

Robustness folds (:data:`PAIRS`) leave two neighbouring départements out at once; they are
reported beside the four folds, not counted in the goals.

Methods compared in the same run: the default objective, ``max_count`` (as many territories as
the floor allows), the recursive bisection at ``target_population = 80000``, and "each EPCI a
territory" (the EPCI parts of the white zone, merged up to the floor).
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import stages
from pipeline.analysis import territories as territories_mod
from pipeline.analysis.adjacency import Adjacency
from pipeline.analysis.coverage import cpts_rows
from pipeline.analysis.realistic import epci_parts
from pipeline.analysis.regions import masked_graph, merge_small
from pipeline.config import load_settings, write_settings_copy
from pipeline.io import read_geoparquet
from pipeline.produce import candidates_of

REPO = Path(__file__).resolve().parents[1]
DEV_SET = REPO / "bench" / "data" / "cpts_paca_dev.csv"
REGION = "93"
FOLDS = ("04", "05", "06", "84")
# Robustness: two neighbouring départements left out at once (a larger white zone, references
# from fewer CPTS); reported beside the folds, not part of the goals.
PAIRS = ("04+05", "04+06", "04+84")
METHODS = ("realistic", "max_count", "bisection_80000", "epci")
# The goals on every fold: ratios within these bounds, ARI at least this.
RATIO_BOUNDS = (0.75, 1.33)
ARI_GOAL = 0.6


def memberships(coverage: pd.DataFrame, cpts: pd.DataFrame) -> pd.DataFrame:
    """The CPTS memberships the pipeline read from a perimeter file (one row per commune and
    CPTS: ``code_insee``, ``cpts_id``, ``cpts_nom``, ``departement``), in the pipeline's own
    reading of it (current codes, homonyms resolved): the perimeter file of a fold is these rows
    without the hidden CPTS, whatever the layout of the table it came from.
    """
    rows = cpts_rows(coverage[["code_commune", "code_departement", "cpts_ids"]])
    names = dict(zip(cpts["cpts_id"], cpts["cpts_nom"]))
    return pd.DataFrame(
        {
            "code_insee": rows["code_commune"].to_numpy(),
            "cpts_id": rows["cpts_id"].to_numpy(),
            "cpts_nom": rows["cpts_id"].map(names).to_numpy(),
            "departement": rows["code_departement"].to_numpy(),
        }
    ).sort_values(["cpts_id", "code_insee"], ignore_index=True)


def fold_departement(rows: pd.DataFrame) -> pd.Series:
    """The fold that hides each CPTS: the département listing most of its communes (ties: the
    smallest code), by id (not :func:`pipeline.analysis.territories.main_departement`, which
    weighs population: the development set names its CPTS by the communes listed).
    """
    counts = rows.groupby(["cpts_id", "departement"]).size().reset_index(name="n")
    counts = counts.sort_values(["cpts_id", "n", "departement"], ascending=[True, False, True])
    return counts.drop_duplicates("cpts_id").set_index("cpts_id")["departement"]


def settings_for(folder: Path, perimeters: Path, region: str = REGION, **territories) -> Path:
    """A settings copy over ``region`` with this perimeter file and ``[territories]`` values."""
    path = write_settings_copy(REPO / "pipeline.toml", folder, scope=f"region:{region}")
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'^file = ""$', f'file = "{perimeters.as_posix()}"', text, count=1, flags=re.M)
    for key, value in territories.items():
        literal = f'"{value}"' if isinstance(value, str) else repr(value)
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {literal}", text, count=1, flags=re.M)
        if not n:
            text = text.replace("[territories]\n", f"[territories]\n{key} = {literal}\n", 1)
    path.write_text(text, encoding="utf-8")
    return path


def coverage_of(folder: Path, table: pd.DataFrame | Path, region: str = REGION) -> tuple:
    """Run communes, perimeters and coverage over ``region`` with ``table`` (rows, or a
    perimeter file in any layout the pipeline reads) as perimeter file; return the settings,
    coverage, CPTS and adjacency.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(table, pd.DataFrame):
        perimeters = folder / "perimetres.csv"
        table.to_csv(perimeters, index=False)
    else:
        perimeters = folder / Path(table).name
        shutil.copyfile(table, perimeters)
    settings = load_settings(settings_for(folder, perimeters, region))
    stages.run_until(settings, "coverage")
    paths = stages.coverage_paths(settings)
    coverage = read_geoparquet(paths["coverage"])
    cpts = read_geoparquet(paths["cpts"])
    return settings, coverage, cpts, stages.adjacency_of(settings, coverage)


def epci_baseline(coverage, adjacency: Adjacency, *, floor: float, ceiling: float) -> np.ndarray:
    """Each EPCI a territory: the connected parts of each EPCI within the white zones, the parts
    below the floor merged into a neighbour (:func:`pipeline.analysis.regionalize.merge_small`).
    Label per commune, -1 outside the white zones.
    """
    white = (coverage["statut"] == "zone_blanche").to_numpy()
    epci = coverage["code_epci"].fillna("").astype(str).to_numpy()
    graph, _ = masked_graph(coverage, adjacency, white, same_departement=False)
    pieces = epci_parts(graph, epci, white)
    pop = coverage["population"].fillna(0).to_numpy(dtype=float)
    labels = np.full(adjacency.n, -1)
    for k, piece in enumerate(merge_small(pieces, graph, pop, floor=floor, ceiling=ceiling)):
        labels[piece] = k
    return labels


def proposed_labels(coverage, adjacency, cpts, settings, method: str) -> tuple[np.ndarray, dict]:
    """Territory label per commune (-1: not in a proposed territory) and each label's population
    (the white part and, for an extension, the CPTS it extends).
    """
    cfg = dict(settings.section("territories"))
    bounds = territories_mod.Bounds.from_settings(cfg)
    codes = coverage["code_commune"].to_numpy()
    if method == "epci":
        labels = epci_baseline(coverage, adjacency, floor=bounds.floor, ceiling=bounds.ceiling)
        pop = coverage["population"].fillna(0).to_numpy()
        sizes = {k: float(pop[labels == k].sum()) for k in np.unique(labels[labels >= 0])}
        return labels, sizes
    if method == "max_count":
        bounds = replace(bounds, objective="max_count", target_population=0.0)
    elif method.startswith("bisection_"):
        bounds = replace(bounds, objective="max_count", target_population=float(method[10:]))
    else:
        bounds = replace(bounds, objective=method)
    territories, members = candidates_of(settings, coverage, adjacency, cpts, bounds)
    ids = sorted(set(members["id_territoire"]) - {""})
    number = {t: k for k, t in enumerate(ids)}
    index = {c: k for k, c in enumerate(codes)}
    labels = np.full(len(codes), -1)
    flagged = members["id_territoire"] == ""
    rows = members[~flagged]
    labels[[index[c] for c in rows["code_commune"]]] = rows["id_territoire"].map(number)
    population = dict(zip(territories["id_territoire"], territories["population"]))
    return labels, {number[t]: float(population[t]) for t in ids}


def tier_counts(populations, bounds=(40_000, 80_000, 175_000)) -> dict[str, int]:
    """ACI tiers T1..T4 of populations (2019 bounds: 175,000 itself is T3)."""
    pops = np.asarray(list(populations), dtype=float)
    tiers = np.where(
        pops < bounds[0], 1, np.where(pops < bounds[1], 2, np.where(pops <= bounds[2], 3, 4))
    )
    return {f"T{t}": int((tiers == t).sum()) for t in (1, 2, 3, 4)}


def compare(truth: np.ndarray, pred: np.ndarray, pop: np.ndarray, sizes: dict, real: dict) -> dict:
    """Figures of one method on the hidden communes (``truth`` >= 0)."""
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

    hidden = truth >= 0
    t, p, w = truth[hidden], pred[hidden].copy(), pop[hidden]
    # a commune in no territory (flagged) is a territory of its own in the comparison
    alone = p < 0
    p[alone] = p.max(initial=0) + 1 + np.arange(alone.sum())
    white_pop = pd.Series(pop[pred >= 0]).groupby(pred[pred >= 0]).sum()
    hidden_pop = pd.Series(w[~alone]).groupby(p[~alone]).sum()
    mostly = [k for k in hidden_pop.index if hidden_pop[k] >= 0.5 * white_pop[k]]
    cand_sizes = [sizes[k] for k in mostly]
    real_sizes = list(real.values())
    cross = pd.crosstab(t, p, values=w, aggfunc="sum").fillna(0)
    best = (cross.max(axis=1) / cross.sum(axis=1)).to_numpy()
    return {
        "candidates": len(mostly),
        "real": len(real_sizes),
        "count_ratio": round(len(mostly) / len(real_sizes), 3),
        "median_candidates": float(np.median(cand_sizes)) if cand_sizes else 0.0,
        "median_real": float(np.median(real_sizes)),
        "median_ratio": round(float(np.median(cand_sizes)) / float(np.median(real_sizes)), 3)
        if cand_sizes
        else 0.0,
        "tiers_candidates": tier_counts(cand_sizes),
        "tiers_real": tier_counts(real_sizes),
        "ari": round(float(adjusted_rand_score(t, p)), 3),
        "ami": round(float(adjusted_mutual_info_score(t, p)), 3),
        "best_match_share": round(float(best.mean()), 3),
    }


def truth_labels(coverage, hidden_ids: list[str]) -> np.ndarray:
    """Hidden CPTS number per commune (-1 for a commune of no hidden CPTS)."""
    number = {c: k for k, c in enumerate(hidden_ids)}
    out = np.full(len(coverage), -1)
    for row, ids in enumerate(coverage["cpts_ids"].fillna("").to_numpy()):
        mine = sorted(number[c] for c in ids.split(";") if c in number)
        if mine:
            out[row] = mine[0]
    return out


def realism(
    tmp: Path,
    *,
    source: Path = DEV_SET,
    region: str = REGION,
    methods=METHODS,
    folds: tuple[str, ...] | None = None,
) -> dict:
    """Leave-one-département-out figures of each method (see the module docstring) on a real
    perimeter table ``source`` of ``region``; a fold "04+05" leaves both départements out.

    Without ``folds``: every département that is the main one of a CPTS of the table, and for
    the development set the robustness folds :data:`PAIRS`.
    """
    all_settings, full, full_cpts, _ = coverage_of(tmp / "all", Path(source), region)
    floor = float(all_settings.section("territories")["floor"])
    rows = memberships(full, full_cpts)
    main = fold_departement(rows)
    if folds is None:
        folds = tuple(sorted(set(main))) + (PAIRS if Path(source) == DEV_SET else ())
    real_pop = dict(zip(full_cpts["cpts_id"], full_cpts["population"]))
    results = {}
    for dep in folds:
        hidden_ids = sorted(main.index[main.isin(dep.split("+"))])
        kept = rows[~rows["cpts_id"].isin(hidden_ids)].drop(columns="departement")
        settings, coverage, cpts, adjacency = coverage_of(tmp / f"fold-{dep}", kept, region)
        truth = truth_labels(
            full.set_index("code_commune").loc[coverage["code_commune"]].reset_index(), hidden_ids
        )
        truth[(coverage["statut"] != "zone_blanche").to_numpy()] = -1
        pop = coverage["population"].fillna(0).to_numpy(dtype=float)
        real = {c: float(real_pop[c]) for c in hidden_ids}
        at_floor = [p for p in real.values() if p >= floor]
        fold = {
            "hidden_cpts": len(hidden_ids),
            # real CPTS smaller than the floor, a hard bound no candidate goes below
            "below_floor": sorted(p for p in real.values() if p < floor),
            "median_real_at_floor": float(np.median(at_floor)) if at_floor else 0.0,
        }
        for method in methods:
            start = time.perf_counter()
            labels, sizes = proposed_labels(coverage, adjacency, cpts, settings, method)
            fold[method] = compare(truth, labels, pop, sizes, real) | {
                "seconds": round(time.perf_counter() - start, 3)
            }
        results[dep] = fold
    bounds = settings.section("territories")
    return {
        "source": Path(source).name,
        "region": region,
        "folds": results,
        "methods": list(methods),
        "floor": bounds["floor"],
        "ceiling": bounds["ceiling"],
    }


METHOD_FR = {
    "realistic": "realistic (default)",
    "max_count": "max_count",
    "bisection_80000": "bisection at 80,000",
    "epci": "each EPCI a territory",
}


def goals_met(fold: dict) -> dict[str, bool]:
    """Which of the issue's goals the default objective meets on one fold."""
    ours = fold["realistic"]
    return {
        "count": RATIO_BOUNDS[0] <= ours["count_ratio"] <= RATIO_BOUNDS[1],
        "median": RATIO_BOUNDS[0] <= ours["median_ratio"] <= RATIO_BOUNDS[1],
        "ari": ours["ari"] >= ARI_GOAL
        and all(ours["ari"] > fold[m]["ari"] for m in ("max_count", "epci") if m in fold),
    }


def realism_lines(results: dict) -> list[str]:
    """The realism table of ``bench/results/summary.md``."""
    lines = [
        "## Realism of the candidate territories (real CPTS, leave one département out)",
        "",
        (
            "Development set: 35 real CPTS of 04, 05, 06 and 84 (`bench/data/cpts_paca_dev.csv`). "
            if results.get("source", DEV_SET.name) == DEV_SET.name
            else f"Table `{results['source']}`, région {results['region']}: "
            f"{sum(f['hidden_cpts'] for d, f in results['folds'].items() if '+' not in d)} "
            "CPTS. "
        )
        + "For each département, its CPTS are left out of the perimeter file and the candidates "
        "proposed on their communes are compared with them; default settings (floor "
        f"{results.get('floor', 10_000):,.0f}, ceiling {results.get('ceiling', 200_000):,.0f}).",
        "",
        "| dép. | method | candidates / real | count ratio | median pop. (cand. / real) | "
        "median ratio | tiers T1-T4 (cand. / real) | ARI | AMI | best-match share |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dep, fold in results["folds"].items():
        if "+" in dep:
            continue
        for method in results["methods"]:
            r = fold[method]
            tiers = "/".join(str(v) for v in r["tiers_candidates"].values())
            real = "/".join(str(v) for v in r["tiers_real"].values())
            name = METHOD_FR.get(method, method)
            lines.append(
                f"| {dep} | {'**' + name + '**' if method == 'realistic' else name} | "
                f"{r['candidates']} / {r['real']} | {r['count_ratio']:.2f} | "
                f"{r['median_candidates']:,.0f} / {r['median_real']:,.0f} | "
                f"{r['median_ratio']:.2f} | {tiers} / {real} | {r['ari']:.2f} | {r['ami']:.2f} | "
                f"{r['best_match_share']:.2f} |"
            )
    met = {
        dep: goals_met(fold)
        for dep, fold in results["folds"].items()
        if "realistic" in fold and "+" not in dep
    }
    lines += [
        "",
        "Goals on every fold (count and median ratios within "
        f"[{RATIO_BOUNDS[0]}, {RATIO_BOUNDS[1]}], ARI ≥ {ARI_GOAL} and above max_count and the "
        "EPCI baseline): "
        + "; ".join(
            f"{dep}: " + ", ".join(f"{k} {'met' if ok else 'missed'}" for k, ok in goals.items())
            for dep, goals in met.items()
        )
        + ".",
        "",
    ]
    lines += below_floor_lines(results)
    pairs = {dep: fold for dep, fold in results["folds"].items() if "+" in dep}
    if pairs:
        lines += [
            "Robustness: two neighbouring départements left out at once (a larger white zone, "
            "reference sizes from fewer CPTS), count ratio / median ratio / ARI:",
            "",
            "| départements | "
            + " | ".join(METHOD_FR.get(m, m) for m in results["methods"])
            + " |",
            "|---|" + "---|" * len(results["methods"]),
        ]
        for dep, fold in pairs.items():
            cells = [
                f"{fold[m]['count_ratio']:.2f} / {fold[m]['median_ratio']:.2f} / "
                f"{fold[m]['ari']:.2f}"
                for m in results["methods"]
            ]
            lines.append(f"| {dep.replace('+', ' + ')} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def below_floor_lines(results: dict) -> list[str]:
    """The folds whose real CPTS include some below the floor, and the default's ratios against
    the real CPTS at or above it (a reading of the misses; the goals stay on every CPTS).
    """
    folds = {
        dep: fold
        for dep, fold in results["folds"].items()
        if "+" not in dep and fold.get("below_floor") and "realistic" in fold
    }
    if not folds:
        return []
    floor = results.get("floor", 10_000)
    listed = "; ".join(
        f"{dep}: {len(fold['below_floor'])} ("
        + ", ".join(f"{p:,.0f}" for p in fold["below_floor"])
        + ")"
        for dep, fold in folds.items()
    )
    ratios = []
    for dep, fold in folds.items():
        ours = fold["realistic"]
        kept = fold["hidden_cpts"] - len(fold["below_floor"])
        median = fold["median_real_at_floor"]
        ratios.append(
            f"{dep} {ours['candidates'] / max(kept, 1):.2f} / "
            f"{ours['median_candidates'] / median if median else 0.0:.2f}"
        )
    return [
        f"Real CPTS below the floor ({floor:,.0f} inhabitants, a hard bound: no candidate is that "
        f"small): {listed}. Against the real CPTS at or above it, the default's count / median "
        f"ratios are {'; '.join(ratios)} (the goals above count every real CPTS).",
        "",
    ]
