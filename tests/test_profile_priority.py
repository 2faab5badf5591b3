"""Priority of the white zones (scores computed by hand, missing criteria left out, never zero) and
the FINESS cross-check of the perimeter file."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from pipeline.analysis.priority import (
    CRITERIA,
    distance_to_covered_km,
    finess_cross_check,
    method_table,
    priority,
    same_cpts,
    weights_from_settings,
    zone_criteria,
)
from pipeline.analysis.profile import commune_profile, group_profile, ratios
from pipeline.errors import PipelineError
from pipeline.sources.finess import cpts_seats, read_finess

from .conftest import FIXTURES

# Three made-up white zones; notes (min-max over the zones) written next to each value.
ZONES = pd.DataFrame(
    {
        "population": [10000, 30000, 20000],  # 0, 1, 0.5
        "part_75p": [12.0, 8.0, 10.0],  # 1, 0, 0.5
        "part_sous_dotee": [100.0, 0.0, 50.0],  # 1, 0, 0.5
        "part_zip": [0.0, 50.0, 100.0],  # 0, 0.5, 1
        "distance_cpts_km": [10.0, 0.0, 5.0],  # 1, 0, 0.5
        "sans_msp": [1.0, 0.0, 0.0],  # 1, 0, 0
    },
    index=pd.Index(["ZB-11-1", "ZB-11-2", "ZB-11-3"], name="zone"),
)


def test_scores_by_hand_with_default_and_custom_weights():
    ranked = priority(ZONES)
    assert ranked.loc["ZB-11-1", "score"] == pytest.approx(4 / 6 * 100)
    assert ranked.loc["ZB-11-2", "score"] == pytest.approx(1.5 / 6 * 100)
    assert ranked.loc["ZB-11-3", "score"] == pytest.approx(3 / 6 * 100)
    assert list(ranked.index) == ["ZB-11-1", "ZB-11-3", "ZB-11-2"] and list(ranked["rang"]) == [
        1,
        2,
        3,
    ]
    assert (
        ranked.loc["ZB-11-3", "note_population"] == 0.5
        and ranked.loc["ZB-11-2", "part_zip"] == 50.0
    )
    # population weighs 3: ZB-11-1 = 4/8, ZB-11-3 = (1.5 + 2.5)/8: a tie, broken by the zone id.
    heavy = priority(ZONES, weights={"population": 3})
    assert heavy.loc["ZB-11-1", "score"] == heavy.loc["ZB-11-3", "score"] == 50.0
    assert list(heavy.index) == ["ZB-11-1", "ZB-11-3", "ZB-11-2"]
    assert heavy.loc["ZB-11-2", "score"] == pytest.approx(3.5 / 8 * 100)


def test_a_criterion_missing_everywhere_acts_only_by_its_absence():
    without = priority(ZONES.drop(columns="part_zip"))
    zero_weight = priority(ZONES, weights={"part_zip": 0})
    pd.testing.assert_series_equal(without["score"], zero_weight["score"])
    assert list(without.index) == list(zero_weight.index)
    assert (without["criteres_absents"] == "part_zip").all() and (
        zero_weight["criteres_absents"] == ""
    ).all()
    assert without["part_zip"].isna().all()  # shown as missing, not as 0


def test_a_criterion_missing_for_one_zone_is_left_out_not_zero():
    zones = ZONES.copy()
    zones.loc["ZB-11-3", "part_sous_dotee"] = (
        np.nan
    )  # not an extreme: the others' notes do not move
    ranked = priority(zones)
    # ZB-11-3 over its five known criteria: (0.5 + 0.5 + 1 + 0.5 + 0) / 5.
    assert ranked.loc["ZB-11-3", "score"] == pytest.approx(2.5 / 5 * 100)
    assert ranked.loc["ZB-11-3", "criteres_absents"] == "part_sous_dotee"
    same_without = priority(zones, weights={"part_sous_dotee": 0})
    assert ranked.loc["ZB-11-3", "score"] == pytest.approx(same_without.loc["ZB-11-3", "score"])
    for zone in ("ZB-11-1", "ZB-11-2"):
        assert ranked.loc[zone, "score"] == pytest.approx(priority(ZONES).loc[zone, "score"])
    as_zero = ZONES.copy()
    as_zero.loc["ZB-11-3", "part_sous_dotee"] = 0.0
    assert priority(as_zero).loc["ZB-11-3", "score"] < ranked.loc["ZB-11-3", "score"]


def test_zone_without_any_criterion_ranks_last():
    zones = pd.DataFrame({"population": [np.nan, 100.0, 200.0]}, index=["A", "B", "C"])
    ranked = priority(zones)
    assert list(ranked.index) == ["C", "B", "A"] and np.isnan(ranked.loc["A", "score"])
    assert ranked.loc["B", "criteres_absents"] == ";".join(c for c in CRITERIA if c != "population")


@pytest.mark.parametrize(
    "weights, expected",
    [
        ({"habitants": 1}, "unknown criterion 'habitants'"),
        ({"population": -1}, "population = -1"),
        ({"population": "2"}, "population = '2'"),
        ({name: 0 for name in CRITERIA}, "every weight is 0"),
    ],
)
def test_weights_are_checked(weights, expected):
    with pytest.raises(PipelineError) as excinfo:
        weights_from_settings(weights)
    assert expected in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_method_table():
    table = method_table({"population": 2})
    assert list(table["critere"]) == list(CRITERIA) and (table["raison"] != "").all()
    assert table.set_index("critere").loc["population", "part_du_poids"] == pytest.approx(
        100 * 2 / 7, abs=0.05
    )


def test_zone_criteria_from_a_group_profile():
    communes = pd.DataFrame(
        {
            "code_commune": ["11069", "11190"],
            "code_departement": "11",
            "code_region": "76",
            "population": [1000, 500],
        }
    )
    profile = commune_profile(
        communes,
        finess=pd.DataFrame(
            {"n_msp": [1], "n_centre_sante": [0], "n_pharmacie": [0]},
            index=pd.Index(["11190"], name="code_commune"),
        ),
    )
    groups = pd.DataFrame({"group": ["A", "B"], "code_commune": ["11069", "11190"]})
    sums = group_profile(profile, groups)
    criteria = zone_criteria(sums, ratios(sums), distance_km=pd.Series({"A": 4.0}))
    assert criteria.loc["A", "sans_msp"] == 1.0 and criteria.loc["B", "sans_msp"] == 0.0
    assert criteria.loc["B", "population"] == 500 and criteria["part_75p"].isna().all()
    assert criteria.loc["A", "distance_cpts_km"] == 4.0 and np.isnan(
        criteria.loc["B", "distance_cpts_km"]
    )


def test_distance_of_the_inhabitants_to_the_nearest_cpts():
    """Units of 1 km² in a row (Lambert-93): covered at x = 1–6 km; zone "near" is one unit touching
    it (0 km); zone "far" has a unit 14 km away (300 inhabitants) and one 16 km away (100): mean
    (14 × 300 + 16 × 100) / 400 = 14.5 km. In the DROM (their own CRS) without any CPTS: unknown.
    """
    coverage = gpd.GeoDataFrame(
        {
            "id_zone_blanche": ["near", "", "far", "far", "drom"],
            "statut": ["zone_blanche", "couverte", "zone_blanche", "zone_blanche", "zone_blanche"],
            "population": [50, 1000, 300, 100, 10],
            "epsg": [2154, 2154, 2154, 2154, 5490],
        },
        geometry=[
            box(0, 6e6, 1000, 6e6 + 1000),
            box(1000, 6e6, 6000, 6e6 + 1000),
            box(20000, 6e6, 21000, 6e6 + 1000),
            box(22000, 6e6, 23000, 6e6 + 1000),
            box(3e5, 6e6, 3.01e5, 6e6 + 1000),
        ],
        crs=2154,
    )
    national = coverage.to_crs(4326)
    for table in (coverage.iloc[:4], national):
        distance = distance_to_covered_km(table)
        assert distance["near"] == 0.0
        assert distance["far"] == pytest.approx(14.5, abs=1e-6)
    assert np.isnan(distance_to_covered_km(national)["drom"])


def test_same_cpts_names():
    assert same_cpts("CPTS DU MINERVOIS", "CPTS du Minervois")
    assert same_cpts(
        "COMMUNAUTE PROFESSIONNELLE TERRITORIALE DE SANTE GRAND NARBONNE", "CPTS Grand Narbonne"
    )
    assert not same_cpts("CPTS CARCASSONNE AGGLO", "CPTS du Lézignanais")
    assert not same_cpts("CPTS", "CPTS du Lézignanais")


def test_finess_cross_check_on_the_fixture():
    seats = cpts_seats(
        read_finess(FIXTURES / "etalab-cs1100507-stock-20241001-0400-extrait.csv")[0]
    )
    status = pd.DataFrame(
        {
            "code_commune": ["11069", "11190", "34172"],
            "statut": ["couverte", "zone_blanche", "couverte"],
            "cpts_ids": ["CPTS-01", None, "CPTS-34"],
        }
    )
    names = {"CPTS-01": "CPTS du Lézignanais", "CPTS-34": "CPTS Montpellier Nord"}
    report = finess_cross_check(seats, status, names, commune_names={"11190": "La Redorte"})
    assert list(report["nofinesset"]) == ["110001007", "110001008"]
    white, other = report.iloc[0], report.iloc[1]
    assert (
        white["motif"] == "siege_zone_blanche"
        and white["nom_commune"] == "La Redorte"
        and white["cpts_ids"] == ""
    )
    assert white["message"] == (
        "Le fichier de périmètres omet peut-être la CPTS « CPTS DU MINERVOIS » "
        "(FINESS 110001007) : son siège (La Redorte) est en zone blanche."
    )
    assert other["motif"] == "siege_autre_cpts" and other["cpts_ids"] == "CPTS-01"
    assert "« CPTS du Lézignanais »" in other["message"]
    # Montpellier's seat lies in the CPTS of the same name: nothing to report.
    assert "340001006" not in set(report["nofinesset"])


def test_priority_of_the_real_white_zones_of_the_aude(config_factory):
    """End to end on the real communes of the Aude with the EXAMPLE perimeters: profile per white
    zone (FINESS fixture), the mean distance of each zone's inhabitants to the nearest CPTS, every
    zone ranked once, the sources not given listed as missing criteria."""
    from pipeline import stages
    from pipeline.config import load_settings
    from pipeline.sources.finess import counts_by_commune

    settings = load_settings(config_factory("dep:11"))
    stages.run_until(settings, "coverage")
    paths = stages.coverage_paths(settings)
    coverage = gpd.read_parquet(paths["coverage"])
    zones = gpd.read_parquet(paths["white_zones"]).set_index("id_zone_blanche")
    assert len(zones) >= 2 and coverage.crs.to_epsg() == 2154
    establishments = read_finess(FIXTURES / "etalab-cs1100507-stock-20241001-0400-extrait.csv")[0]
    profile = commune_profile(coverage, finess=counts_by_commune(establishments))
    white = coverage[coverage["id_zone_blanche"] != ""]
    sums = group_profile(
        profile,
        pd.DataFrame({"group": white["id_zone_blanche"], "code_commune": white["code_commune"]}),
    )
    assert sums["population"].astype(int).to_dict() == zones["population"].astype(int).to_dict()
    distance = distance_to_covered_km(coverage)
    assert sorted(distance.index) == sorted(zones.index) and (distance >= 0).all()
    ranked = priority(zone_criteria(sums, ratios(sums), distance_km=distance))
    assert sorted(ranked.index) == sorted(zones.index) and list(ranked["rang"]) == list(
        range(1, len(zones) + 1)
    )
    assert ranked["score"].notna().all() and ranked["score"].is_monotonic_decreasing
    assert (ranked["criteres_absents"] == "part_75p;part_sous_dotee;part_zip").all()
    with_msp = {
        zone
        for zone, code in zip(white["id_zone_blanche"], white["code_commune"])
        if code in ("11069", "11190")
    }
    assert all(ranked.loc[z, "sans_msp"] == 0.0 for z in with_msp)
    assert (ranked.drop(index=list(with_msp))["sans_msp"] == 1.0).all()
