"""The claims table: for each of the paper's claims, the measured numbers and a verdict.

Verdicts are strict: a difference counts only when it exceeds twice its standard error over
seeds. Too few seeds or too small an effect gives "not resolved at this scale".
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

REPRODUCED, PARTLY, UNRESOLVED, NOT_REPRODUCED, MISSING = (
    "reproduced", "partly reproduced", "not resolved at this scale", "not reproduced", "not measured")

CLAIMS = {
    "C1": "Transforming feature maps instead of the input lowers accuracy on rotated data (STN-C0 vs STN-C1, C2).",
    "C2": "An ST on the input learns to undo the rotation; STs deeper in the network track it worse.",
    "C3": "Feature maps of a rotated image stay far from the original's, even after the best spatial rotation.",
    "C4": "Shared localization (STN-SLk) stays stable as k grows; deeper separate localization (STN-DLk) is "
          "harder to train.",
    "C5": "Iterating the ST helps, but does not replace rich features for predicting theta.",
}


@dataclass
class ClaimRow:
    claim: str
    statement: str
    measured: str
    verdict: str


def difference(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean of ``a`` minus mean of ``b``, and its standard error (nan with fewer than 2 seeds each)."""
    diff = statistics.mean(a) - statistics.mean(b)
    if len(a) < 2 or len(b) < 2:
        return diff, float("nan")
    return diff, math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))


def direction(a: list[float], b: list[float]) -> int:
    """+1 if ``a`` is clearly higher, -1 if clearly lower, 0 if not resolved."""
    diff, se = difference(a, b)
    if math.isnan(se) or abs(diff) <= 2 * max(se, 1e-9):
        return 0
    return 1 if diff > 0 else -1


def _fmt(values: list[float]) -> str:
    spread = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.3f}{spread}"


def _verdict(directions: list[int]) -> str:
    if directions and all(d == 1 for d in directions):
        return REPRODUCED
    if any(d == -1 for d in directions):
        return NOT_REPRODUCED
    return UNRESOLVED


def claim_c1(results) -> tuple[str, str]:
    acc = results["02_placement"]["accuracy"]
    deeper = [k for k in ("STN-C1", "STN-C2") if k in acc]
    measured = ", ".join(f"{k} {_fmt(acc[k])}" for k in ["STN-C0", *deeper])
    return measured, _verdict([direction(acc["STN-C0"], acc[k]) for k in deeper])


def claim_c2(results) -> tuple[str, str]:
    fits = results["02_placement"]["angle_fit"]
    r = {k: fits[k]["correlation"] for k in ("STN-C0", "STN-C1", "STN-C2") if k in fits}
    measured = ", ".join(f"r({k}) = {v:.2f}" for k, v in r.items())
    measured += f"; slope of STN-C0 {fits['STN-C0']['slope']:.2f} (1 = undoes the whole rotation)"
    tracks = r["STN-C0"] > 0.8
    ordered = all(r["STN-C0"] > r[k] + 0.05 for k in r if k != "STN-C0")
    if ordered:
        return measured, REPRODUCED if tracks else PARTLY
    return measured, NOT_REPRODUCED


def claim_c3(results) -> tuple[str, str]:
    rows = results["01_feature_alignment"]["misalignment"]
    input_rows = {r["angle"]: r["residual"] for r in rows if r["index"] == 0}
    deeper = [r for r in rows if r["index"] > 0]
    measured = "; ".join(f"{r['angle']:g}° layer {r['index']}: {r['residual']:.2f} (input {input_rows[r['angle']]:.2f})"
                         for r in deeper)
    measured += f"; channels that still match themselves after 90°: {results['01_feature_alignment']['self_match_rate']:.0%}"
    # Judged at 90 degrees, where rotating back is exact in input space (no interpolation blur).
    far = all(r["residual"] > max(3 * input_rows[r["angle"]], 0.1) for r in deeper if r["angle"] == 90)
    return measured, REPRODUCED if far else NOT_REPRODUCED


def claim_c4(results) -> tuple[str, str]:
    acc = results["03_localization_depth"]["accuracy"]
    measured = ", ".join(f"{k} {_fmt(v)}" for k, v in acc.items())
    failed = results["03_localization_depth"].get("failed", [])
    if failed:
        measured += f"; failed to train: {', '.join(failed)}"
    sl_beats_dl = direction(acc["STN-SL2"], acc["STN-DL2"])
    sl_stable = direction(acc["STN-SL1"], acc["STN-SL2"]) != 1  # SL2 not clearly worse than SL1
    if sl_beats_dl == 1 and sl_stable:
        return measured, REPRODUCED
    return measured, NOT_REPRODUCED if sl_beats_dl == -1 else UNRESOLVED


def claim_c5(results) -> tuple[str, str]:
    acc = results["04_iterations"]["accuracy"]
    spread = results["04_iterations"].get("seed_std", {})
    measured = ", ".join(f"{k} {_fmt(v)}" for k, v in acc.items())
    helps, rich_needed = [], None
    for base in ("STN-C0", "STN-SL1", "STN-DL1"):
        if base in acc and f"{base}x3" in acc:
            noise = spread.get(base, float("nan"))
            gain = statistics.mean(acc[f"{base}x3"]) - statistics.mean(acc[base])
            helps.append(0 if math.isnan(noise) or gain <= 2 * noise else 1)
    if "STN-C0x3" in acc and "STN-SL1" in acc:
        rich_needed = direction(acc["STN-SL1"], acc["STN-C0x3"])
    if helps and any(helps) and rich_needed == 1:
        return measured, REPRODUCED
    return measured, UNRESOLVED


CHECKS = {"C1": claim_c1, "C2": claim_c2, "C3": claim_c3, "C4": claim_c4, "C5": claim_c5}


def claims_table(results: dict[str, dict]) -> list[ClaimRow]:
    """One row per claim, from the notebooks' recorded numbers (``Study.results()``)."""
    rows = []
    for claim, check in CHECKS.items():
        try:
            measured, verdict = check(results)
        except KeyError as missing:
            measured, verdict = f"no recorded result for {missing}", MISSING
        rows.append(ClaimRow(claim, CLAIMS[claim], measured, verdict))
    return rows


def claims_markdown(rows: list[ClaimRow]) -> str:
    lines = ["| claim | statement | measured | verdict |", "|---|---|---|---|"]
    lines += [f"| {r.claim} | {r.statement} | {r.measured} | **{r.verdict}** |" for r in rows]
    return "\n".join(lines)
