"""The realistic objective on real communes: the reference size comes from the right CPTS,
EPCIs stay whole when the reference allows it, territories are contiguous and deterministic,
and ``max_count`` still gives the labels of the max-p regionalization."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import theilslopes

from pipeline.analysis.adjacency import build_adjacency, components
from pipeline.analysis.communes import build_communes
from pipeline.analysis.coverage import cpts_table
from pipeline.analysis.explanation import Describer
from pipeline.analysis.indicators import indicator_text
from pipeline.analysis.realistic import RESCUE_DIAMETER, SPLIT_FACTOR, realistic_regions
from pipeline.analysis.reference import (
    DENSITY_RADIUS_KM,
    FEW_CPTS,
    MIN_CPTS,
    NATIONAL_REFERENCE,
    POOL_CPTS,
    neighbourhood_density,
    reference_sizes,
)
from pipeline.analysis.regionalize import regionalize
from pipeline.analysis.regions import centroids_and_areas, diameter_km
from pipeline.analysis.territories import Bounds, candidate_territories
from pipeline.config import Scope

from .conftest import CRS
from .test_territories import coverage_of

REALISTIC = Bounds(10_000, 200_000, 60.0, 3.0, True)


@pytest.fixture(scope="module")
def vaucluse_alpes(raw):
    """Real communes of the Vaucluse and the Hautes-Alpes (région 93)."""
    return build_communes(raw, Scope.parse("departements:05,84"), **CRS)[0]


def epci_cpts(communes, departement):
    """CPTS made of the EPCIs of one département (each EPCI a CPTS; every commune of the EPCI
    in the scope, as a real EPCI-based CPTS would be).
    """
    epcis = communes.loc[communes["code_departement"] == departement, "code_epci"].unique()
    rows = communes[communes["code_epci"].isin(epcis)]
    return pd.DataFrame(
        {
            "cpts_id": rows["code_epci"],
            "cpts_nom": rows["nom_epci"],
            "code_commune": rows["code_commune"],
        }
    )


def class_medians(communes, members, x, y, area):
    """Median population of the CPTS of each density class, computed here from the communes
    (population and area summed per CPTS, class bounds 50 / 150 / 500 inh./km²), and the
    ``expected`` reference of each class: that median, or — for a class of fewer than FEW_CPTS
    CPTS among at least POOL_CPTS — the robust (Theil-Sen) line of log population against log
    density of all these CPTS, read at the class's median density.
    """
    table = communes[["code_commune", "population"]].assign(area=area)
    per = members.merge(table, on="code_commune").groupby("cpts_id")[["population", "area"]].sum()
    density = per["population"] / per["area"]
    cls = np.searchsorted([50.0, 150.0, 500.0], density.to_numpy(), side="right")
    out = per.assign(classe=cls).groupby("classe")["population"].agg(["median", "size"])
    slope, intercept, _, _ = theilslopes(np.log(per["population"]), np.log(density))
    at = pd.Series(np.log(density.to_numpy())).groupby(cls).median()
    line = np.round(np.exp(intercept + slope * at))
    few = (out["size"] < FEW_CPTS) & (len(per) >= POOL_CPTS)
    return out.assign(expected=out["median"].where(~few, line), pooled=few)


def references_for(communes, members):
    """Coverage of ``communes`` by the CPTS ``members``, the reference of every commune
    (``sizes``, ``which``, ``refs``) and :func:`class_medians` of these CPTS.
    """
    coverage, _ = coverage_of(communes, members)
    x, y, area = centroids_and_areas(coverage)
    sizes, which, refs = reference_sizes(coverage, x, y, area, example=False)
    return coverage, sizes, which, refs, class_medians(coverage, members, x, y, area)


def test_reference_is_the_median_of_comparable_cpts_of_the_region(vaucluse_alpes):
    # The Vaucluse is covered by one CPTS per EPCI, the Hautes-Alpes is a white zone: each
    # commune of the Hautes-Alpes takes the median of the Vaucluse CPTS of its density class
    # (région level: its own département has none) — read on the size–density line of all of them
    # when the class has fewer than FEW_CPTS —, or the national figure when the région has fewer
    # than MIN_CPTS of them.
    communes = vaucluse_alpes
    members = epci_cpts(communes, "84")
    coverage, sizes, which, refs, medians = references_for(communes, members)
    alps = (coverage["code_departement"] == "05").to_numpy()
    alps = alps & ~np.isin(coverage["code_commune"], members["code_commune"])
    seen = set()
    for k in np.unique(which[alps]):
        ref = refs[k]
        if ref.level == "national":
            assert ref.population == NATIONAL_REFERENCE
            continue
        assert ref.level == "region" and ref.area == "93"
        assert ref.n_cpts == medians.loc[ref.density_class, "size"] >= MIN_CPTS
        assert ref.population == medians.loc[ref.density_class, "expected"]
        assert bool(ref.pooled) == medians.loc[ref.density_class, "pooled"]
        assert "de la région 93" in ref.text() and "taille visée" in ref.text()
        seen.add(ref.density_class)
    assert seen, "the Hautes-Alpes take at least one reference from the Vaucluse CPTS"
    assert np.allclose(sizes[alps], [refs[k].population for k in which[alps]])


def test_reference_prefers_the_cpts_of_the_departement(vaucluse_alpes):
    # With CPTS in both départements, the Vaucluse's own white communes take the Vaucluse CPTS
    # of their class when there are MIN_CPTS of them (département level).
    communes = vaucluse_alpes
    members = pd.concat([epci_cpts(communes, "84"), epci_cpts(communes, "05")])
    left_out = members["cpts_id"].drop_duplicates().iloc[::4]  # a quarter of the CPTS left out
    members = members[~members["cpts_id"].isin(left_out)]
    coverage, _ = coverage_of(communes, members)
    x, y, area = centroids_and_areas(coverage)
    _, which, refs = reference_sizes(coverage, x, y, area, example=False)
    white = (coverage["statut"] == "zone_blanche").to_numpy()
    vaucluse = members[members["code_commune"].str.startswith("84")]
    medians = class_medians(coverage, vaucluse, x, y, area)
    rows = white & (coverage["code_departement"] == "84").to_numpy()
    levels = {refs[k].level for k in which[rows]}
    assert "departement" in levels
    for k in np.unique(which[rows]):
        ref = refs[k]
        if ref.level == "departement":
            assert ref.area == "84"
            assert ref.population == medians.loc[ref.density_class, "expected"]
            assert medians.loc[ref.density_class, "size"] >= MIN_CPTS
        elif ref.density_class in medians.index:  # too few in the département for that class
            assert medians.loc[ref.density_class, "size"] < MIN_CPTS
    # one class of the Vaucluse has only 3 CPTS: its size is read on the line of all 10
    pooled = [refs[k] for k in np.unique(which[rows]) if refs[k].pooled]
    assert pooled and "relation taille–densité de ses" in pooled[0].text()


def test_the_national_fallback_says_how_few_comparable_cpts_the_file_has(vaucluse_alpes):
    # Only the Hautes-Alpes are covered (one CPTS per EPCI, mountain ones): the white Vaucluse
    # communes of a density class with fewer than MIN_CPTS of these CPTS take the national figure,
    # and their reference says so, with how many comparable CPTS the file has.
    coverage, _, which, refs, medians = references_for(
        vaucluse_alpes, epci_cpts(vaucluse_alpes, "05")
    )
    counts = medians["size"]
    vaucluse = (coverage["statut"] == "zone_blanche").to_numpy() & (
        coverage["code_departement"] == "84"
    ).to_numpy()
    national = [refs[k] for k in np.unique(which[vaucluse]) if refs[k].level == "national"]
    assert national, "the dense Vaucluse has no comparable CPTS among the Hautes-Alpes ones"
    for ref in national:
        have = int(counts.get(ref.density_class, 0))
        assert ref.population == NATIONAL_REFERENCE and ref.n_cpts == have < MIN_CPTS
        text = ref.text()
        assert text.startswith("taille visée : 82 000 hab., moyenne nationale des CPTS (FCPTS")
        assert f"faute de {MIN_CPTS} CPTS " in text and "dans le fichier de périmètres" in text
        assert ("il n'y en a aucune" if have == 0 else "il n'y en a qu") in text


def test_a_candidate_over_communes_of_different_references_says_how_its_size_combines_them(
    vaucluse_alpes, repo_settings
):
    # The Vaucluse covered (one CPTS per EPCI), the Hautes-Alpes white: a candidate whose
    # communes fall in different density classes aims at the size at which it weighs one
    # reference (population / Σ population ÷ reference), and says how it combines them, largest
    # share first; a candidate of one reference size states that reference alone.
    communes = vaucluse_alpes
    members = epci_cpts(communes, "84")
    coverage, adjacency = coverage_of(communes, members)
    cpts = cpts_table(communes, members, repo_settings.section("aci"), example=False)
    territories, rows = candidate_territories(
        coverage, adjacency, cpts, repo_settings.section("aci"), REALISTIC
    )
    x, y, area = centroids_and_areas(coverage)
    sizes, which, refs = reference_sizes(coverage, x, y, area, example=False)
    at = {code: k for k, code in enumerate(coverage["code_commune"])}
    mixed = 0
    for row in territories[territories["type_territoire"] == "candidate"].itertuples():
        k = [at[c] for c in rows.loc[rows["id_territoire"] == row.id_territoire, "code_commune"]]
        pop = coverage["population"].to_numpy(dtype=float)[k]
        target = pop.sum() / (pop / sizes[k]).sum()
        assert row.taille_visee == round(target)
        share = pd.Series(pop).groupby(which[k]).sum().sort_values(ascending=False, kind="stable")
        main = refs[int(share.index[0])]
        assert row.reference == main.text()
        if round(target) == round(main.population):
            assert row.composition_taille_visee == ""
            continue
        mixed += 1
        text = row.composition_taille_visee
        assert text.startswith(f"taille visée : {indicator_text(target, decimals=0)} hab., ")
        place = [text.index(f" hab., {refs[int(r)].source()}") for r in share.index]
        assert place == sorted(place), "largest share first"
        for r, p in share.items():
            percent = f"{indicator_text(100 * p / share.sum(), decimals=0)} % : "
            assert percent + indicator_text(refs[int(r)].population, decimals=0) in text
    assert mixed >= 2
    # one reference size for every commune (set by the user): no candidate combines any
    fixed = replace(REALISTIC, reference_population=50_000.0)
    territories, _ = candidate_territories(
        coverage, adjacency, cpts, repo_settings.section("aci"), fixed
    )
    cand = territories[territories["type_territoire"] == "candidate"]
    assert len(cand) and (cand["composition_taille_visee"] == "").all()
    assert (cand["taille_visee"] == 50_000).all()


def test_example_perimeters_are_never_a_reference(vaucluse_alpes):
    communes = vaucluse_alpes
    coverage, _ = coverage_of(communes, epci_cpts(communes, "84"))
    x, y, area = centroids_and_areas(coverage)
    sizes, _, refs = reference_sizes(coverage, x, y, area, example=True)
    assert [r.level for r in refs] == ["national"] and (sizes == NATIONAL_REFERENCE).all()
    fixed, _, refs = reference_sizes(coverage, x, y, area, example=False, fixed=35_000)
    assert (fixed == 35_000).all() and refs[0].level == "reglage"
    assert DENSITY_RADIUS_KM > 0


@pytest.fixture(scope="module")
def aveyron(raw):
    return build_communes(raw, Scope.parse("departements:12"), **CRS)[0]


def test_epcis_stay_whole_when_the_reference_allows_it(aveyron):
    # Every commune of the Aveyron is a white zone and the reference is set to 45,000: an EPCI
    # below twice the reference, within the ceiling and the diameter, is never cut; a territory
    # is a union of whole EPCIs, contiguous, within the bounds.
    communes = aveyron
    mask = np.ones(len(communes), bool)
    adjacency = build_adjacency(communes)
    reference = np.full(len(communes), 45_000.0)
    regions = realistic_regions(communes, adjacency, mask, reference, floor=10_000)
    labels = regions.labels
    x, y, _ = centroids_and_areas(communes)
    pop = communes["population"].to_numpy(dtype=float)
    kept = 0
    for code, rows in communes.groupby("code_epci").indices.items():
        total = pop[rows].sum()
        wide = diameter_km(x[rows], y[rows]) > 60.0
        if total <= SPLIT_FACTOR * 45_000 and not wide:
            assert len(set(labels[rows])) == 1, f"EPCI {code} was cut"
            kept += 1
    assert kept >= 10
    totals = np.bincount(labels, weights=pop)
    assert ((totals >= 10_000) & (totals <= 200_000)).all()
    for k in range(labels.max() + 1):
        assert components(adjacency, labels == k).max() == 0, f"territory {k} not contiguous"
    # without a floor to force small remnants into a neighbour, no territory made of several
    # EPCIs is wider than max_diameter_km, but a tier-1 one that the reference says should be
    # larger, up to RESCUE_DIAMETER times that (the floor is a hard bound, the diameter is not)
    free = realistic_regions(communes, adjacency, mask, reference, floor=1.0).labels
    for k in range(free.max() + 1):
        inside = free == k
        if len(set(communes["code_epci"][inside])) == 1:
            continue
        assert diameter_km(x[inside], y[inside]) <= RESCUE_DIAMETER * 60.0, f"{k} too wide"
    # sized like the reference: the median territory is within a factor 2 of it
    assert 45_000 / 2 <= np.median(totals) <= 45_000 * 2


def test_a_larger_reference_gives_fewer_larger_territories(aveyron):
    communes = aveyron
    mask = np.ones(len(communes), bool)
    adjacency = build_adjacency(communes)
    counts = {}
    for size in (20_000, 80_000):
        regions = realistic_regions(
            communes, adjacency, mask, np.full(len(communes), float(size)), floor=10_000
        )
        counts[size] = regions.labels.max() + 1
    assert counts[80_000] < counts[20_000]


def test_realistic_candidates_are_deterministic_and_explained(aveyron, repo_settings):
    communes = aveyron
    members = epci_cpts(communes, "12")
    members = members[members["cpts_id"].isin(members["cpts_id"].drop_duplicates().iloc[::2])]
    coverage, adjacency = coverage_of(communes, members)
    cpts = cpts_table(communes, members, repo_settings.section("aci"), example=False)
    runs = [
        candidate_territories(coverage, adjacency, cpts, repo_settings.section("aci"), REALISTIC)
        for _ in range(2)
    ]
    (first, members_a), (second, members_b) = runs
    assert members_a.equals(members_b)
    assert first.drop(columns="geometry").equals(second.drop(columns="geometry"))
    cand = first[first["type_territoire"] == "candidate"]
    assert len(cand) and (cand["pole"] != "").all() and (cand["reference"] != "").all()
    assert (cand["taille_visee"] > 0).all()
    assert np.allclose(
        cand["rapport_taille_visee"], cand["population"] / cand["taille_visee"], atol=0.01
    )
    # the pôle is the most populous commune of the candidate
    for _, row in cand.iterrows():
        rows = members_a[members_a["id_territoire"] == row["id_territoire"]]
        top = rows.sort_values(["population", "code_commune"], ascending=[False, True]).iloc[0]
        assert row["pole"].endswith(f"({top['code_commune']})")
        named = [p for p in (row["epci_entiers"] + "; " + row["epci_partiels"]).split("; ") if p]
        assert named, "every candidate names its EPCIs"


def test_max_count_gives_the_max_p_labels(aveyron, repo_settings):
    # objective = "max_count" is the max-p regionalization as it was: the same labels as
    # regionalize() called directly with the same settings.
    communes = aveyron
    members = epci_cpts(communes, "12")
    members = members[members["cpts_id"].isin(members["cpts_id"].drop_duplicates().iloc[::3])]
    coverage, adjacency = coverage_of(communes, members)
    cpts = cpts_table(communes, members, repo_settings.section("aci"), example=False)
    bounds = replace(REALISTIC, floor=20_000, objective="max_count")
    _, out = candidate_territories(coverage, adjacency, cpts, repo_settings.section("aci"), bounds)
    white = (coverage["statut"] == "zone_blanche").to_numpy()
    direct = regionalize(coverage, adjacency, white, epci_penalty=3.0, **bounds.options())
    index = dict(zip(coverage["code_commune"], range(len(coverage))))
    placed = out[out["id_territoire"] != ""]
    ours = placed.groupby("id_territoire")["code_commune"].apply(
        lambda s: tuple(sorted(index[c] for c in s))
    )
    theirs = {
        tuple(np.flatnonzero(direct.labels == k).tolist())
        for k in range(direct.labels.max() + 1)
        if direct.codes.get(k) is None or direct.codes[k].value != "zone_entiere_sous_plancher"
    }
    assert set(ours) <= theirs and len(ours) >= 3


def test_target_population_belongs_to_max_count(tmp_path):
    from pipeline.config import load_settings
    from pipeline.errors import ValidationError

    from .conftest import write_config

    config = write_config(tmp_path)
    text = config.read_text(encoding="utf-8").replace(
        "target_population = 0", "target_population = 80000"
    )
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        load_settings(config)
    assert any(
        p.startswith(
            "[territories] target_population: target_population (80000) applies to "
            'objective = "max_count"'
        )
        for p in err.value.problems
    )
    config.write_text(text.replace('objective = "realistic"', 'objective = "max_count"'))
    assert load_settings(config).section("territories")["target_population"] == 80000


@pytest.fixture(scope="module")
def alps_south(raw):
    """Real communes of the Alpes-de-Haute-Provence, the Hautes-Alpes and the Alpes-Maritimes."""
    return build_communes(raw, Scope.parse("departements:04,05,06"), **CRS)[0]


def mixed_reference(communes, x, y, area):
    """A reference by density, as the file's CPTS would give it: 17,000 inhabitants where the
    neighbourhood has fewer than 50 inhabitants per km², 82,000 elsewhere."""
    pop = communes["population"].to_numpy(dtype=float)
    density = neighbourhood_density(x, y, pop, area)
    return np.where(density < 50.0, 17_000.0, 82_000.0)


def test_an_epci_across_a_departement_border_is_one_block_per_departement(alps_south):
    # With a reference equal to the population of each EPCI's share of a département, every
    # such share is a block of weight 1: none is cut, no two are grouped. The Sisteronais-Buëch
    # (200068765) lies in the Alpes-de-Haute-Provence and the Hautes-Alpes: it becomes two
    # territories, one per département (the ACI is signed with the CPAM of a département).
    communes = alps_south
    adjacency = build_adjacency(communes)
    mask = np.ones(len(communes), bool)
    pop = communes["population"].to_numpy(dtype=float)
    key = communes["code_epci"].astype(str) + "|" + communes["code_departement"]
    reference = key.map(pd.Series(pop, index=communes.index).groupby(key).sum()).to_numpy()
    labels = realistic_regions(communes, adjacency, mask, reference, floor=1.0).labels
    border = communes["code_epci"] == "200068765"
    assert set(communes.loc[border, "code_departement"]) == {"04", "05"}
    for dep, rows in communes[border].groupby("code_departement").indices.items():
        inside = labels[border.to_numpy()][rows]
        assert len(set(inside)) == 1, f"the {dep} share of the EPCI was cut"
    shares = communes[border].groupby("code_departement").apply(lambda g: labels[g.index[0]])
    assert shares["04"] != shares["05"]
    for k in np.unique(labels):
        assert communes.loc[labels == k, "code_departement"].nunique() == 1


def test_a_city_too_populous_to_share_holds_one_territory_whatever_its_weight(alps_south):
    # Nice (06088) holds over four reference sizes and cannot be shared: the rest of the
    # Métropole Nice Côte d'Azur (200030195) is still cut into territories of about one
    # reference size each, not left with the shares the city could not use (territories of
    # a fraction of the reference next to ones of nearly two).
    communes = alps_south
    adjacency = build_adjacency(communes)
    x, y, area = centroids_and_areas(communes)
    reference = mixed_reference(communes, x, y, area)
    mask = np.ones(len(communes), bool)
    labels = realistic_regions(communes, adjacency, mask, reference, floor=10_000).labels
    pop = communes["population"].to_numpy(dtype=float)
    metro = (communes["code_epci"] == "200030195").to_numpy()
    nice = (communes["code_commune"] == "06088").to_numpy()
    assert pop[nice].sum() > 4 * 82_000
    assert len(set(labels[nice])) == 1 and (labels == labels[nice][0]).sum() == 1
    rest = metro & ~nice
    mostly = [
        k
        for k in np.unique(labels[rest])
        if pop[rest & (labels == k)].sum() > 0.5 * pop[labels == k].sum()
    ]
    weights = [(pop / reference)[rest & (labels == k)].sum() for k in mostly]
    assert len(mostly) >= round((pop[rest] / reference[rest]).sum()) - 1
    assert all(0.5 <= w <= 1.5 for w in weights), weights


def test_a_candidate_holding_an_epci_s_share_of_a_departement_says_so(alps_south):
    # The Sisteronais-Buëch lies in two départements: a candidate made of all its communes of the
    # Hautes-Alpes says so; one made of some of them only gives the count.
    communes = alps_south
    x, y, _ = centroids_and_areas(communes)
    describe = Describer(communes, x, y)
    share = np.flatnonzero(
        ((communes["code_epci"] == "200068765") & (communes["code_departement"] == "05")).to_numpy()
    )
    total = int((communes["code_epci"] == "200068765").sum())
    text = describe(share)["epci_partiels"]
    assert text.endswith(f": {len(share)} commune(s) sur {total} (toutes ses communes du 05)"), text
    some = describe(share[:-1])["epci_partiels"]
    assert some.endswith(f": {len(share) - 1} commune(s) sur {total}"), some


def realistic_candidates(communes, settings, members=None):
    """Coverage, adjacency, territories and members of the realistic objective when ``members``
    (one row per CPTS and commune; none by default) are the perimeters."""
    if members is None:
        members = pd.DataFrame(
            {k: pd.Series(dtype=object) for k in ("cpts_id", "cpts_nom", "code_commune")}
        )
    coverage, adjacency = coverage_of(communes, members)
    cpts = cpts_table(communes, members, settings.section("aci"), example=False)
    territories, out = candidate_territories(
        coverage, adjacency, cpts, settings.section("aci"), REALISTIC
    )
    return coverage, adjacency, territories, out


def test_a_candidate_is_named_after_the_departement_holding_most_of_its_people(
    alps_south, repo_settings
):
    # Every commune of the three Alpine départements is a white zone (one patch across their
    # borders): each candidate's id names the département holding most of its population, not
    # the one of its first commune.
    communes = alps_south
    coverage, adjacency, territories, members = realistic_candidates(communes, repo_settings)
    deps = coverage.set_index("code_commune")["code_departement"]
    named = 0
    for tid, rows in members[members["id_territoire"].str.startswith("CAND-")].groupby(
        "id_territoire"
    ):
        people = rows.groupby(rows["code_commune"].map(deps))["population"].sum()
        assert tid.split("-")[1] == people.idxmax(), (tid, people.to_dict())
        first = deps[rows["code_commune"].iloc[0]]
        named += first != people.idxmax()
    assert named, "no candidate whose first commune lies in another département: a weak case"
    assert set(members.loc[members["code_iris"] == "", "code_commune"]) == set(
        coverage["code_commune"]
    )


def widths_by_candidate(coverage, members):
    """Largest distance (km) between two commune centres of each candidate, over all pairs
    (no hull), with each candidate's commune rows."""
    x, y, _ = centroids_and_areas(coverage)
    where = {c: k for k, c in enumerate(coverage["code_commune"])}
    out = {}
    for tid, rows in members[members["id_territoire"].str.startswith("CAND-")].groupby(
        "id_territoire"
    ):
        k = np.array([where[c] for c in rows["code_commune"]])
        pairs = pdist(np.c_[x[k], y[k]]) if len(k) > 1 else np.zeros(1)
        out[tid] = (float(pairs.max()) / 1000.0, k)
    return out


def test_a_candidate_wider_than_max_diameter_says_how_wide_and_why(alps_south, repo_settings):
    # The Alpes-de-Haute-Provence is a white zone, the Hautes-Alpes and the Alpes-Maritimes are
    # covered by one CPTS per EPCI. The Vallée de l'Ubaye (200072304) is below the floor and
    # every union with a white neighbour is wider than 60 km: it joins the least populous, and
    # that candidate says it is wider than the setting, by how much and why — as does every
    # candidate wider than max_diameter_km, and no other.
    communes = alps_south
    members = pd.concat([epci_cpts(communes, "05"), epci_cpts(communes, "06")])
    members = members[members["code_commune"].str[:2] != "04"]
    coverage, adjacency, territories, out = realistic_candidates(communes, repo_settings, members)
    motif = territories.set_index("id_territoire")["motif"]
    widths = widths_by_candidate(coverage, out)
    wide = {tid for tid, (km, _) in widths.items() if km > REALISTIC.max_diameter_km}
    assert wide, "no candidate wider than max_diameter_km: a weak case"
    for tid, (km, _) in widths.items():
        said = "plus étendu que le diamètre maximal" in motif[tid]
        assert said == (tid in wide), (tid, km, motif[tid])
        if said:
            assert f"({km:.1f} km entre".replace(".", ",") in motif[tid], motif[tid]
    ubaye = (coverage["code_epci"] == "200072304").to_numpy()
    assert coverage.loc[ubaye, "population"].sum() < REALISTIC.floor
    (holder,) = {tid for tid, (_, k) in widths.items() if ubaye[k].any()}
    assert holder in wide and "une partie sous le plancher" in motif[holder], motif[holder]
    # every union was wider: the Ubaye with any other candidate it touches
    x, y, _ = centroids_and_areas(coverage)
    valley = np.flatnonzero(ubaye)
    touching = set(adjacency.j[ubaye[adjacency.i]]) | set(adjacency.i[ubaye[adjacency.j]])
    others = [k for tid, (_, k) in widths.items() if tid != holder and touching & set(k.tolist())]
    assert others
    for k in others:
        union = np.r_[valley, k]
        assert pdist(np.c_[x[union], y[union]]).max() / 1000.0 > REALISTIC.max_diameter_km


def test_a_tier_1_candidate_grouped_past_max_diameter_says_so(aveyron, repo_settings):
    # The whole Aveyron is a white zone sized by the national reference (82,000): tier-1
    # territories may be grouped up to RESCUE_DIAMETER times max_diameter_km, never beyond,
    # and each candidate so grouped says so.
    communes = aveyron
    coverage, adjacency, territories, out = realistic_candidates(communes, repo_settings)
    motif = territories.set_index("id_territoire")["motif"]
    widths = widths_by_candidate(coverage, out)
    wide = [tid for tid, (km, _) in widths.items() if km > REALISTIC.max_diameter_km]
    assert wide, "no candidate wider than max_diameter_km: a weak case"
    for tid in wide:
        assert widths[tid][0] <= RESCUE_DIAMETER * REALISTIC.max_diameter_km
        assert "(palier 1)" in motif[tid] and "jusqu'à 1,25 fois" in motif[tid], motif[tid]
