"""The realism benchmark's protocol on the real development set (bench/data/cpts_paca_dev.csv):
a fold hides exactly the CPTS whose main département it is, keeps every other membership as the
pipeline read it, and compares the candidates with the hidden CPTS on their communes only."""

from __future__ import annotations

import pandas as pd

from bench.realism import (
    DEV_SET,
    below_floor_lines,
    coverage_of,
    fold_departement,
    memberships,
    realism,
)


def test_a_fold_hides_the_cpts_of_its_departement_and_keeps_the_others(tmp_path, raw):
    _, full, full_cpts, _ = coverage_of(tmp_path / "all", DEV_SET)
    rows = memberships(full, full_cpts)
    main = fold_departement(rows)
    # the development set holds the CPTS of four départements, 35 of them
    assert sorted(set(main)) == ["04", "05", "06", "84"]
    assert len(main) == 35
    hidden = set(main.index[main == "05"])
    kept = rows[~rows["cpts_id"].isin(hidden)].drop(columns="departement")
    _, coverage, cpts, _ = coverage_of(tmp_path / "fold", kept)
    assert set(cpts["cpts_id"]) == set(main.index) - hidden
    again = memberships(coverage, cpts).drop(columns="departement")
    pd.testing.assert_frame_equal(again.reset_index(drop=True), kept.reset_index(drop=True))
    status = coverage.set_index("code_commune")["statut"]
    only_hidden = rows.groupby("code_insee")["cpts_id"].agg(lambda ids: set(ids) <= hidden)
    for code in only_hidden.index[only_hidden]:
        assert status[code] == "zone_blanche", code


def test_realism_compares_on_the_hidden_communes(tmp_path, raw):
    results = realism(tmp_path, folds=("05",), methods=("epci",))
    fold = results["folds"]["05"]
    table = pd.read_csv(DEV_SET, dtype=str)
    # the six CPTS of the Hautes-Alpes (two of them "CPTS du Gapençais" and "CPTS Gapençais",
    # kept apart as published)
    assert fold["hidden_cpts"] == 6 == fold["epci"]["real"]
    names = table.groupby("cpts_nom")["code_insee"].agg(lambda c: c.str[:2].value_counts().idxmax())
    assert (names == "05").sum() == 6
    epci = fold["epci"]
    assert sum(epci["tiers_real"].values()) == 6
    assert 0 < epci["candidates"] <= 20
    assert -1 <= epci["ari"] <= 1 and 0 <= epci["best_match_share"] <= 1


def test_real_cpts_below_the_floor_are_told_apart(tmp_path, raw):
    # below the default floor, which no candidate goes below: the CPTS de la Vallée de l'Ubaye
    # (04), and in the Hautes-Alpes the single village listed as "CPTS Gapençais" beside the
    # "CPTS du Gapençais"
    results = realism(tmp_path, folds=("04", "05"), methods=("realistic",))
    floor = results["floor"]
    assert floor == 10_000
    four, five = results["folds"]["04"], results["folds"]["05"]
    assert len(four["below_floor"]) == 1 and 5_000 < four["below_floor"][0] < floor
    assert len(five["below_floor"]) == 1 and five["below_floor"][0] < 1_000
    assert four["median_real_at_floor"] > four["realistic"]["median_real"]
    (line, _) = below_floor_lines(results)
    assert f"04: 1 ({four['below_floor'][0]:,.0f}); 05: 1 (" in line
    kept = four["hidden_cpts"] - 1
    ratio = four["realistic"]["median_candidates"] / four["median_real_at_floor"]
    assert f"04 {four['realistic']['candidates'] / kept:.2f} / {ratio:.2f}; 05 " in line
