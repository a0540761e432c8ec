"""The study's runner and the claims table."""
import pytest

from stnlib.study import (CLAIMS, C1, DL2, NO_ST, SL1, Study, claims_markdown, claims_table, failed_to_train,
                          iterated)
from stnlib.study.claims import MISSING, NOT_REPRODUCED, PARTLY, REPRODUCED, UNRESOLVED, direction


def test_variants_map_to_the_original_cli_options(tmp_path):
    study = Study("smoke", output=str(tmp_path))
    sl1 = study.config(SL1, seed=2)
    assert (sl1.stn_placement, sl1.loop, sl1.deep, sl1.seed, sl1.localization) == ([3], True, False, 2, "FCN")
    assert study.config(DL2).deep and study.config(C1).stn_placement == [3]
    assert study.config(iterated(SL1, 3)).stn_placement == [3, 3, 3]
    assert not study.config(NO_ST).has_st
    paper = Study("paper", output=str(tmp_path), device="cpu")
    assert paper.profile.dataset == "mnist" and paper.profile.device == "cpu"


def test_runs_are_trained_once_and_reused(tmp_path):
    study = Study("smoke", output=str(tmp_path), log=lambda _: None)
    first = study.run(NO_ST, seed=0)
    stamp = (first.folder / "final.pt").stat().st_mtime_ns
    again = study.run(NO_ST, seed=0)
    assert (again.folder / "final.pt").stat().st_mtime_ns == stamp
    longer = Study("smoke", epochs=2, output=str(tmp_path), log=lambda _: None).run(NO_ST, seed=0)
    assert len(longer.history) == 2 and (longer.folder / "final.pt").stat().st_mtime_ns != stamp


def test_study_data_limits_keep_every_class(tmp_path):
    study = Study("smoke", output=str(tmp_path))
    assert len(study.data.train_images) == 256 and len(set(study.data.test_labels.tolist())) == 10


def test_direction_needs_more_than_noise():
    assert direction([0.95, 0.96, 0.955], [0.90, 0.91, 0.905]) == 1
    assert direction([0.90, 0.91, 0.905], [0.95, 0.96, 0.955]) == -1
    assert direction([0.90, 0.95, 0.92], [0.91, 0.94, 0.93]) == 0
    assert direction([0.99], [0.5]) == 0  # one seed: no spread, no verdict


def synthetic_results(c0=(0.95, 0.96, 0.955), c1=(0.90, 0.91, 0.905)):
    return {
        "01_feature_alignment": {"misalignment": [
            {"index": 0, "angle": 90.0, "residual": 0.0, "unaligned": 1.0},
            {"index": 3, "angle": 90.0, "residual": 0.6, "unaligned": 1.0}], "self_match_rate": 0.05},
        "02_placement": {"accuracy": {"no ST": [0.88, 0.89], "STN-C0": list(c0), "STN-C1": list(c1),
                                      "STN-C2": list(c1)},
                         "angle_fit": {"STN-C0": {"correlation": 0.95, "slope": 0.9}, "STN-C1": {"correlation": 0.3},
                                       "STN-C2": {"correlation": 0.1}}},
        "03_localization_depth": {"accuracy": {"STN-SL1": [0.95, 0.951, 0.952], "STN-SL2": [0.96, 0.961, 0.962],
                                               "STN-DL1": [0.93, 0.931, 0.932], "STN-DL2": [0.90, 0.905, 0.91]},
                                  "failed": ["STN-DL2"]},
        "04_iterations": {"accuracy": {"STN-C0": [0.95], "STN-C0x3": [0.94], "STN-SL1": [0.96]},
                          "seed_std": {"STN-C0": 0.002}},
    }


def test_claims_table_verdicts():
    rows = {r.claim: r for r in claims_table(synthetic_results())}
    assert set(rows) == set(CLAIMS)
    assert rows["C1"].verdict == REPRODUCED and "STN-C0 0.955" in rows["C1"].measured
    assert rows["C2"].verdict == REPRODUCED and rows["C3"].verdict == REPRODUCED
    assert rows["C4"].verdict == REPRODUCED and "failed to train: STN-DL2" in rows["C4"].measured
    assert rows["C5"].verdict == UNRESOLVED
    reversed_c1 = {r.claim: r for r in claims_table(synthetic_results(c0=(0.90, 0.91, 0.905), c1=(0.95, 0.96, 0.955)))}
    assert reversed_c1["C1"].verdict == NOT_REPRODUCED
    weak = synthetic_results()
    weak["02_placement"]["angle_fit"]["STN-C0"]["correlation"] = 0.6
    assert {r.claim: r for r in claims_table(weak)}["C2"].verdict == PARTLY


def test_claims_table_without_results_says_not_measured():
    rows = claims_table({})
    assert [r.verdict for r in rows] == [MISSING] * len(CLAIMS)
    assert claims_markdown(rows).count("\n") == len(CLAIMS) + 1


def test_failed_to_train():
    base = {"variant": "no ST", "mean": 0.9}
    rows = [{"variant": "A", "mean": 0.95}, {"variant": "B", "mean": 0.85}]
    assert failed_to_train(rows, base) == ["B"]
