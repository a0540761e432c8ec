"""The claims table: every verdict of every claim is reachable, and the paired test behind it."""
import copy
import functools

import pytest
import torch

from stnlib.errors import ConfigError
from stnlib.evaluation import channel_alignment, paired_comparison, paired_interaction, rotation_symmetric_copy
from stnlib.models import STNetwork
from stnlib.study import CLAIMS, claims_markdown, claims_reading, claims_table
from stnlib.study.claims import DECISIVE_NOTEBOOK, MISSING, NOT_REPRODUCED, REPRODUCED, UNRESOLVED, far_at_every_layer


def outcomes(accuracy: float, seeds: int = 3, images: int = 1000, passes: int = 10, seed: int = 0):
    """Per seed, (passes, images) bool outcomes with the given accuracy."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(passes, images, generator=generator) < accuracy for _ in range(seeds)]


def comparison(a: str, b: str, direction: int) -> dict:
    """A recorded paired comparison that comes out with ``direction`` (+1, -1 or 0)."""
    return copy.deepcopy(_comparison(a, b, direction))


@functools.lru_cache(maxsize=None)
def _comparison(a: str, b: str, direction: int) -> dict:
    """``comparison``, bootstrapped once per test session (its inputs are fixed by their seeds)."""
    first = outcomes(0.95, seed=1)
    second = {1: outcomes(0.90, seed=2), -1: outcomes(0.99, seed=2), 0: first}[direction]
    return paired_comparison(first, second, names=(a, b)).as_dict()


def wide_comparison(a: str, b: str) -> dict:
    """A small positive difference whose interval spans both zero and ``LITTLE``: nothing resolved."""
    first, second = outcomes(0.95, images=60, passes=1, seed=1), outcomes(0.93, images=60, passes=1, seed=2)
    return paired_comparison(first, second, names=(a, b)).as_dict()


def control_alignment(residual: float, floor: float = 0.1) -> list[dict]:
    return [{"kind": "any", "amount": 1.0, "index": 0, "unaligned": 1.0, "residual": floor, "best": 1.0, "floor": floor},
            {"kind": "any", "amount": 1.0, "index": 3, "unaligned": 0.8, "residual": floor + residual, "best": 1.0,
             "floor": floor}]


def fits(slope: float, r: float, seeds: int = 3) -> list[dict]:
    return [{"slope": slope, "correlation": r, "mean_abs_error": 10.0, "original_std": 15.0}] * seeds


def alignment(trained: float, control: float) -> dict:
    rows = lambda value: [{"index": 0, "angle": 90.0, "spatial": 0.0, "with_channels": 0.0},
                          {"index": 3, "angle": 90.0, "spatial": value, "with_channels": value / 2}]
    return {"trained": rows(trained), "untrained": rows(trained), "rotation-symmetric control": rows(control)}


def results(c1=1, c0_fit=(0.9, 0.95), c1_fit=(0.1, 0.3), trained=0.8, control=0.0, c4=1, helps=1, rich=1,
            shift=0, zoom=1, shift_excess=0.0, zoom_excess=0.3, profile="quick"):
    shift_comparison = (wide_comparison("STN-C0", "STN-C1") if shift == "wide"
                        else comparison("STN-C0", "STN-C1", shift))
    return {
        "07_translation_scale": {"profile": profile,
                                 "comparisons": {"translate": [shift_comparison],
                                                 "scale": [comparison("STN-C0", "STN-C1", zoom)]},
                                 "alignment": {"translate": control_alignment(shift_excess),
                                               "scale": control_alignment(zoom_excess)}},
        "01_feature_alignment": {"profile": profile, "alignment": alignment(trained, control)},
        "02_placement": {"profile": profile, "accuracy": {"STN-C0": [0.95] * 3, "STN-C1": [0.9] * 3},
                         "comparisons": [comparison("STN-C0", "STN-C1", c1)],
                         "angle_fits": {"STN-C0": fits(*c0_fit), "STN-C1": fits(*c1_fit)}},
        "03_localization_depth": {"profile": profile, "accuracy": {"STN-SL2": [0.95] * 3, "STN-DL2": [0.9] * 3},
                                  "comparisons": [comparison("STN-SL2", "STN-DL2", c4)]},
        "04_iterations": {"profile": profile, "accuracy": {"STN-C0": [0.95] * 3, "STN-C0x2": [0.96] * 3},
                          "comparisons": [comparison("STN-C0x2", "STN-C0", helps), comparison("STN-SL2", "STN-C0x2", rich)]},
    }


def verdicts(**changes) -> dict[str, str]:
    return {row.claim: row.verdict for row in claims_table(results(**changes))}


@pytest.mark.parametrize("claim, changes, expected", [
    ("C1", {}, REPRODUCED), ("C1", {"c1": -1}, NOT_REPRODUCED), ("C1", {"c1": 0}, UNRESOLVED),
    ("C2", {}, REPRODUCED), ("C2", {"c0_fit": (0.05, 0.2)}, NOT_REPRODUCED),
    ("C2", {"c1_fit": (0.9, 0.97)}, NOT_REPRODUCED), ("C2", {"c0_fit": (0.3, 0.7)}, UNRESOLVED),
    ("C2", {"c1_fit": (0.55, 0.92)}, REPRODUCED),  # as consistent, but undoes far less of each rotation
    ("C2", {"c1_fit": (0.85, 0.9)}, UNRESOLVED),  # a little worse on both: neither clearly worse nor as good
    ("C3", {}, REPRODUCED), ("C3", {"trained": 0.02}, NOT_REPRODUCED), ("C3", {"control": 0.5}, UNRESOLVED),
    ("C4", {}, REPRODUCED), ("C4", {"c4": -1}, NOT_REPRODUCED), ("C4", {"c4": 0}, UNRESOLVED),
    ("C5", {}, REPRODUCED), ("C5", {"helps": -1}, NOT_REPRODUCED), ("C5", {"rich": -1}, NOT_REPRODUCED),
    ("C5", {"helps": 0}, UNRESOLVED),
    ("C6", {}, REPRODUCED), ("C6", {"shift": 1}, NOT_REPRODUCED), ("C6", {"zoom": -1}, NOT_REPRODUCED),
    ("C6", {"shift_excess": 0.3}, NOT_REPRODUCED), ("C6", {"zoom_excess": 0.02}, NOT_REPRODUCED),
    ("C6", {"zoom": 0}, UNRESOLVED), ("C6", {"shift": "wide"}, UNRESOLVED),
])
def test_every_verdict_of_every_claim_is_reachable(claim, changes, expected):
    assert verdicts(**changes)[claim] == expected


def test_measured_numbers_carry_intervals_and_p_values():
    rows = {row.claim: row for row in claims_table(results())}
    assert set(rows) == set(CLAIMS)
    assert "STN-C0 − STN-C1: +0.04" in rows["C1"].measured and "], p = " in rows["C1"].measured
    assert "slope 0.90, 0.90, 0.90" in rows["C2"].measured and "std(true − undone) 15°" in rows["C2"].measured


def test_claims_table_without_results_says_not_measured():
    rows = claims_table({})
    assert [r.verdict for r in rows] == [MISSING] * len(CLAIMS)
    assert claims_markdown(rows).count("\n") == len(CLAIMS) + 1


def test_results_of_different_profiles_are_refused_in_one_line():
    mixed = results()
    mixed["03_localization_depth"]["profile"] = "smoke"
    with pytest.raises(ConfigError) as error:
        claims_table(mixed)
    message = str(error.value)
    assert "\n" not in message and "03_localization_depth (smoke)" in message and "02_placement (quick)" in message


def test_paired_comparison_resolves_a_real_difference_and_not_noise():
    better = paired_comparison(outcomes(0.95, seed=1), outcomes(0.93, seed=2), names=("a", "b"))
    assert better.direction == 1 and better.low > 0 and better.p_value < 0.01
    assert all(p < 0.05 for p in better.mcnemar_p)
    same = paired_comparison(outcomes(0.95, seed=1), outcomes(0.95, seed=2))
    assert same.direction == 0 and same.low < 0 < same.high
    assert paired_comparison(outcomes(0.93, seed=2), outcomes(0.95, seed=1)).direction == -1


def test_paired_comparison_uses_the_pairing():
    """Two models that differ on few images are told apart, though each seed's accuracy varies a lot."""
    base = [torch.rand(10, 1000, generator=torch.Generator().manual_seed(s)) < p for s, p in enumerate((0.7, 0.9, 0.8))]
    improved = [b.clone() for b in base]
    for b in improved:
        b[:, :30] = True  # a fixes the first 30 images, nothing else changes
    assert paired_comparison(improved, base).direction == 1


def test_rotation_symmetric_control_gets_a_different_c3_verdict():
    torch.manual_seed(0)
    model = STNetwork("CNN", (1, 28, 28)).eval()
    images = torch.rand(8, 1, 28, 28)
    rows = lambda net: [vars(channel_alignment(net, images, 90.0, index)) for index in (0, 3, 6)]
    cnn, control = rows(model), rows(rotation_symmetric_copy(model))
    assert far_at_every_layer(cnn) and not far_at_every_layer(control)
    assert all(row["spatial"] < 1e-4 for row in control)
    assert all(row["with_channels"] <= row["spatial"] + 1e-6 for row in cnn)
    table = {"01_feature_alignment": {"alignment": {"trained": cnn, "rotation-symmetric control": control}}}
    assert {r.claim: r.verdict for r in claims_table(table)}["C3"] == REPRODUCED
    table["01_feature_alignment"]["alignment"]["trained"] = control
    assert {r.claim: r.verdict for r in claims_table(table)}["C3"] == NOT_REPRODUCED


def test_recorded_st_slopes_are_shown_beside_c4_and_c5():
    table = results()
    table["03_localization_depth"]["angle_fits"] = {"STN-SL2": fits(0.0, 0.0), "STN-DL2": fits(0.8, 0.9)}
    rows = {row.claim: row for row in claims_table(table)}
    assert "ST slope per seed: STN-SL2 0.00 / 0.00 / 0.00, STN-DL2 0.80 / 0.80 / 0.80" in rows["C4"].measured
    assert "ST slope" not in rows["C5"].measured


# ----- C4 as a trend and C5 with more seeds (notebook 05) -----
def trend(direction: int, recipe: str) -> dict:
    """A recorded depth trend whose interaction comes out with ``direction``."""
    accuracy = {label: [0.9] * 3 for label in ("STN-C0", "STN-SL1", "STN-SL2", "STN-DL1", "STN-DL2")}
    return {"recipe": recipe, "accuracy": accuracy, "angle_fits": {label: fits(0.9, 0.9) for label in accuracy},
            "interaction": comparison("(STN-SL2 − STN-SL1)", "(STN-DL2 − STN-DL1)", direction),
            "comparisons": [comparison("STN-SL1", "STN-DL1", 0), comparison("STN-SL2", "STN-DL2", direction)]}


def decisive_results(profile_recipe=1, equal_rates=1, helps=1, rich=1, sl2_slope=0.9) -> dict:
    recorded = results()
    recorded[DECISIVE_NOTEBOOK] = {
        "profile": "quick",
        "depth": {"profile": trend(profile_recipe, "profile"), "equal rates": trend(equal_rates, "equal rates")},
        "iterations": {"recipe": "equal rates", "seeds": 8,
                       "comparisons": [comparison("STN-C0x2", "STN-C0", helps), comparison("STN-SL2", "STN-C0x2", rich)],
                       "angle_fits": {"STN-C0": fits(0.9, 0.9), "STN-C0x2": fits(0.95, 0.95),
                                      "STN-SL2": fits(sl2_slope, 0.9)}}}
    return recorded


@pytest.mark.parametrize("claim, changes, verdict, reason", [
    ("C4", {}, REPRODUCED, ""),
    ("C4", {"profile_recipe": -1}, REPRODUCED,
     "depends on the recipe: not reproduced under the profile recipe, reproduced under the equal rates recipe"),
    ("C4", {"equal_rates": -1}, NOT_REPRODUCED, "depends on the recipe: reproduced under the profile recipe"),
    ("C4", {"profile_recipe": -1, "equal_rates": -1}, NOT_REPRODUCED,
     "the same under the profile recipe and the equal rates recipe, at depths k = 1 and 2"),
    ("C4", {"profile_recipe": 0, "equal_rates": 0}, UNRESOLVED, "the same under"),
    ("C5", {}, REPRODUCED, ""),
    ("C5", {"helps": 0}, UNRESOLVED, "a second iteration changes accuracy by +0.0000 over 8 seeds"),
    ("C5", {"helps": -1}, NOT_REPRODUCED, "a second iteration lowers accuracy"),
    ("C5", {"rich": -1, "sl2_slope": 0.6}, NOT_REPRODUCED,
     "STN-SL2 is less accurate than STN-C0x2 and its ST undoes less of each rotation (mean slope 0.60 against 0.95)"),
    ("C5", {"rich": 0}, UNRESOLVED, "STN-SL2 is not more accurate than STN-C0x2 and its ST undoes about as much"),
])
def test_notebook_05_decides_c4_as_a_trend_and_c5_with_a_reason(claim, changes, verdict, reason):
    row = {r.claim: r for r in claims_table(decisive_results(**changes))}[claim]
    assert row.verdict == verdict
    assert reason in row.reason and bool(row.reason) == bool(reason)
    if claim == "C4":
        assert row.measured.index("profile recipe: (STN-SL2 − STN-SL1) − (STN-DL2 − STN-DL1)") \
            < row.measured.index("equal rates recipe: ")
    else:
        assert row.measured.startswith("8 seeds, equal rates recipe: STN-C0x2 − STN-C0")


def test_c4_says_which_st_undoes_less_at_depth_2():
    recorded = decisive_results(profile_recipe=-1, equal_rates=-1)
    recorded[DECISIVE_NOTEBOOK]["depth"]["equal rates"]["angle_fits"]["STN-SL2"] = fits(0.5, 0.8)
    reason = {r.claim: r for r in claims_table(recorded)}["C4"].reason
    assert "STN-SL2's ST undoes less of each rotation than STN-DL2's (mean slope 0.50 against 0.90)" in reason
    assert "undoes less" not in {r.claim: r for r in claims_table(decisive_results(equal_rates=-1))}["C4"].reason


def test_without_notebook_05_c4_and_c5_say_what_they_leave_out():
    rows = {r.claim: r for r in claims_table(results(c4=-1))}
    assert rows["C4"].verdict == NOT_REPRODUCED and "one depth (k = 2)" in rows["C4"].reason
    assert "notebook 05" in rows["C5"].reason and rows["C5"].verdict == REPRODUCED
    assert "**not reproduced**: one depth (k = 2)" in claims_markdown(list(rows.values()))


def test_claims_reading_states_verdict_numbers_and_reason():
    reading = claims_reading(decisive_results(equal_rates=-1), ("C4",))
    assert reading.startswith("**C4: not reproduced.** Deeper localization networks")
    assert "Measured: profile recipe: (STN-SL2 − STN-SL1)" in reading and "What it depends on: depends on the recipe" \
        in reading and "C5" not in reading


def test_paired_interaction_finds_the_setting_that_loses_more():
    a_shallow, b_shallow = outcomes(0.90, seed=1), outcomes(0.90, seed=2)
    a_deep, b_deep = outcomes(0.90, seed=3), outcomes(0.85, seed=4)  # b loses five points from shallow to deep
    interaction = paired_interaction(a_deep, a_shallow, b_deep, b_shallow, names=("a2", "a1", "b2", "b1"))
    assert interaction.direction == 1 and interaction.low > 0 and 0.03 < interaction.difference < 0.07
    assert (interaction.a, interaction.b, interaction.mcnemar_p) == ("(a2 − a1)", "(b2 − b1)", [])
    assert paired_interaction(b_deep, b_shallow, a_deep, a_shallow).direction == -1
    same = paired_interaction(a_deep, a_shallow, a_deep, a_shallow)
    assert same.difference == 0 and same.direction == 0
    with pytest.raises(ValueError, match="same seeds"):
        paired_interaction(a_deep, a_shallow[:2], b_deep, b_shallow)
