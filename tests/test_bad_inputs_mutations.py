"""Tests that a plausible bug would break (issue 22's mutation spot-check), on real communes.

Each test pins one behaviour that a one-line change of the code got past the suite before:
a commune claimed in part only, a name asked back across départements, the composer's off-map
population, and a remnant below the floor that had no neighbour it could join.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import stages
from pipeline.analysis.adjacency import build_adjacency
from pipeline.analysis.coverage import commune_status, white_zone_patches
from pipeline.analysis.regionalize import Reason, regionalize
from pipeline.config import load_settings
from tests.conftest import set_input_files, write_config
from tests.test_names import resolve
from tests.test_regionalize import grid


def test_a_commune_claimed_only_in_part_is_not_a_white_zone(raw, ref, tmp_path):
    """Mauguio: only its part Carnon is in a CPTS, nobody holds it whole."""
    rows = ["cpts_id;cpts_nom;commune;partie", "B;CPTS du Littoral;Mauguio;Carnon"]
    rows.append("B;CPTS du Littoral;La Grande-Motte;")
    communes, members, _issues, _ = resolve(raw, ref, "dep:34", "\n".join(rows) + "\n", tmp_path)
    status = commune_status(communes, members).set_index("code_commune")
    assert status.loc["34154", "statut"] == "couverte" and status.loc["34154", "partiel"]
    assert status.loc["34154", "n_cpts"] == 0, "no whole membership"
    adjacency = build_adjacency(communes)
    patch_of, _ = white_zone_patches(communes, status.reset_index(), adjacency)
    assert patch_of[communes["code_commune"].tolist().index("34154")] == ""


def test_a_name_of_several_departements_is_asked_back(raw, ref, tmp_path):
    """'Saint-Amans' is a commune of the Aude (11331) and a commune déléguée in Ariège and Lozère:
    in a région 76 context it is ambiguous, not silently 11331."""
    text = "cpts_id;cpts_nom;commune\nA;CPTS A;Saint-Amans\nA;CPTS A;Mende\n"
    _, members, issues, names = resolve(raw, ref, "region:76", text, tmp_path)
    assert members["code_commune"].tolist() == ["48095"]
    errors = issues.loc[issues["niveau"] == "erreur", "message"].tolist()
    assert len(errors) == 1 and "le nom « Saint-Amans » est ambigu" in errors[0]
    codes = issues.loc[issues["niveau"] == "erreur", "code"].tolist()
    assert codes == ["nom_ambigu"]
    assert all(code in errors[0] for code in ("09056", "11331", "48127"))
    assert names.set_index("nom_publie").loc["Saint-Amans", "correspondance"] == "ambigu"
    # with the département given, the commune of that name wins
    text = "cpts_id;cpts_nom;commune;departement\nA;CPTS A;Saint-Amans;11\n"
    _, members, issues, _ = resolve(raw, ref, "region:76", text, tmp_path)
    assert members["code_commune"].tolist() == ["11331"]


@pytest.mark.parametrize(
    "pops, expected",
    [
        ([199_000, 5_000, 199_000], [Reason.ABOVE_CEILING, Reason.BELOW_FLOOR, None]),
        ([150_000, 5_000, 199_000], [None, None]),
    ],
    ids=["no neighbour can take it", "the smaller neighbour takes it"],
)
def test_a_remnant_below_the_floor_joins_a_neighbour_when_one_can_take_it(pops, expected):
    """A line of three units, floor 20,000, ceiling 200,000: the 5,000 in the middle is left below
    the floor only when joining either neighbour would pass the ceiling."""
    frame = grid(3, 1, pops, set(), epci_width=3)
    adjacency = build_adjacency(frame)
    floor, ceiling = 20_000, 200_000
    regions = regionalize(frame, adjacency, np.ones(3, bool), floor=floor, ceiling=ceiling)
    labels = regions.labels
    totals = np.bincount(labels, weights=pops)
    assert totals.max() <= ceiling, "never merged past the ceiling"
    below = [k for k, code in regions.codes.items() if code == Reason.BELOW_FLOOR]
    neighbours = adjacency.neighbours()
    for label in below:
        rows = np.flatnonzero(labels == label)
        touching = {labels[n] for r in rows for n in neighbours[r]} - {label}
        assert touching and all(totals[t] + totals[label] > ceiling for t in touching)
    if expected == [None, None]:
        assert labels.tolist() == [0, 0, 1] and not regions.codes
    else:
        assert len(set(labels)) == 3 and below == [labels[1]]


def test_composer_started_from_a_cpts_beyond_the_map_keeps_its_off_map_population(
    tmp_path, raw, browser
):
    """A CPTS over Aude and Hérault on the Aude map: starting from it, the composer shows the
    CPTS's whole population (cpts.parquet), of which the Hérault part is fixed."""
    from selenium.webdriver.support.ui import Select

    from tests.test_composer import digits, open_map

    perimeters = tmp_path / "cpts.csv"
    codes = {"11069": "Carcassonne", "11262": "Narbonne", "34172": "Montpellier"}
    perimeters.write_text(
        "cpts_id;cpts_nom;code_commune\n" + "".join(f"X;CPTS Transfrontière;{c}\n" for c in codes),
        encoding="utf-8",
    )
    config = set_input_files(write_config(tmp_path, scope="departements:11,34"), file=perimeters)
    settings = load_settings(config)
    stages.run_until(settings, "export")
    coverage = pd.read_parquet(stages.coverage_paths(settings)["coverage"])
    population = coverage.set_index("code_commune")["population"]
    cpts = pd.read_parquet(stages.coverage_paths(settings)["cpts"]).set_index("cpts_id")
    assert cpts.loc["X", "population"] == population[list(codes)].sum()
    open_map(browser, stages.export_paths(settings)["departements"] / "carte_11.html")
    browser.execute_script("localStorage.clear(); window.cptsComposer.open(true)")
    Select(browser.find_element("id", "cc-from")).select_by_value("X")
    browser.find_element("id", "cc-start").click()
    shown = browser.find_element("id", "cc-pop").text
    assert digits(shown) == cpts.loc["X", "population"], shown
    off_map = shown.split("(dont ")[1]
    assert digits(off_map) == population["34172"], shown
    assert browser.find_element("id", "cc-n").text == "3"
