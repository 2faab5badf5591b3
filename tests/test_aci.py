"""ACI tiers and funding envelopes from the versioned table in the settings."""

from __future__ import annotations

import pytest

from pipeline.aci import assign_tier, envelopes, funding_table
from pipeline.errors import ValidationError


@pytest.fixture()
def aci(repo_settings):
    return repo_settings.section("aci").to_dict()


@pytest.mark.parametrize(
    "population,tier",
    [
        (0, "T1"),
        (39_999, "T1"),
        (40_000, "T2"),
        (79_999, "T2"),
        (80_000, "T3"),
        (175_000, "T3"),
        (175_001, "T4"),
        (2_000_000, "T4"),
    ],
)
def test_tier_boundaries(aci, population, tier):
    assert (
        assign_tier(
            [population],
            tiers=aci["tiers"],
            bounds=aci["bounds"],
            bound_goes_up=aci["bound_goes_up"],
        )[0]
        == tier
    )


def test_2019_envelopes_and_mission_breakdown(aci):
    table = funding_table(aci)
    assert list(table["total"]) == [185_000, 242_000, 315_000, 380_000]
    assert list(table["supplement_soins_non_programmes"]) == [35_000, 45_000, 55_000, 70_000]
    assert list(table["acces_aux_soins"]) == [40_000, 47_000, 65_000, 80_000]
    got = envelopes([39_999, 80_000, 175_001], aci)
    assert list(got["enveloppe_eur"]) == [185_000, 315_000, 380_000]
    assert list(got["supplement_snp_eur"]) == [35_000, 55_000, 70_000]


def test_new_vintage_is_added_by_editing_the_table_only(aci):
    new = {
        k: [v * 2 for v in vals] if isinstance(vals, list) else vals
        for k, vals in aci["funding"]["2019"].items()
    }
    aci["funding"]["2030"] = new
    aci["vintage"] = "2030"
    assert list(envelopes([10_000], aci)["enveloppe_eur"]) == [370_000]


def test_broken_table_reports_every_problem(aci):
    aci["funding"]["2019"]["prevention"] = [20_000, 30_000, 35_000]
    aci["bounds"] = [80_000, 40_000, 175_000]
    with pytest.raises(ValidationError) as err:
        funding_table(aci)
    assert len(err.value.problems) == 2
    assert "bounds must be increasing" in str(
        err.value
    ) and "prevention: needs 4 whole amounts" in str(err.value)
    aci["bounds"] = [40_000, 80_000, 175_000]
    aci["funding"]["2019"]["prevention"] = [20_000, 30_000, 35_000, 41_000]
    with pytest.raises(
        ValidationError, match=r"missions sum to .*381000\], but total says .*380000\]"
    ):
        funding_table(aci)
    aci["vintage"] = "2042"
    with pytest.raises(ValidationError, match='no \\[aci.funding."2042"\\] table'):
        funding_table(aci)
