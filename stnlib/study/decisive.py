"""Notebook 05's analyses: claim C4 as a trend in localization depth, under the profile's recipe and
under one that trains STN-SLk's and STN-DLk's theta-predicting blocks alike, and claim C5 with more
seeds. Each returns the numbers the claims table reads (``Study.record``)."""
from __future__ import annotations

import statistics

from ..evaluation import PairedComparison, paired_interaction
from .analyses import accuracy_table, angle_fits, compare
from .claims import DECISIVE_NOTEBOOK, mean_slopes  # DECISIVE_NOTEBOOK: the notebook, and the key of its numbers
from .session import Study
from .variants import DEPTH_TREND, DL1, DL2, EQUAL_RATES, ITERATION_VARIANTS, PROFILE_RECIPE, SL1, SL2, Recipe

TREND_VARIANTS = tuple(dict.fromkeys(v for family in DEPTH_TREND.values() for v in family))  # C0, SL1, SL2, DL1, DL2
C5_VARIANTS = (*ITERATION_VARIANTS, SL2)  # STN-C0, STN-C0x2, STN-SL2
C5_RECIPE = EQUAL_RATES
TREND_RECIPES = (PROFILE_RECIPE, EQUAL_RATES)  # C4's verdict is read under the second


def depth_trend(study: Study, recipe: Recipe, seeds: int | None = None) -> dict:
    """C4 under ``recipe``: the test accuracy and angle fits of STN-C0 (depth 0), STN-SL1/2 and
    STN-DL1/2 per seed; the interaction (STN-SL2 − STN-SL1) − (STN-DL2 − STN-DL1) on the same rotated
    test images (positive: DL loses more than SL from depth 1 to 2, as the paper says); and SL
    against DL at each depth."""
    trained = study.trained(TREND_VARIANTS, seeds, recipe)
    label = recipe.label
    correct = {v: [r.test_correct for r in trained[label(v)]] for v in (SL1, SL2, DL1, DL2)}
    interaction = paired_interaction(correct[SL2], correct[SL1], correct[DL2], correct[DL1],
                                     names=tuple(label(v) for v in (SL2, SL1, DL2, DL1)))
    return {"recipe": recipe.name,
            "depth": {recipe.label(v): depth for family in DEPTH_TREND.values() for depth, v in enumerate(family)},
            "family": {recipe.label(v): name for name, family in DEPTH_TREND.items() for v in family[1:]},
            "accuracy": {row["variant"]: row["accuracies"] for row in accuracy_table(trained)},
            "interaction": interaction.as_dict(),
            "comparisons": [compare(trained, label(a), label(b)).as_dict() for a, b in ((SL1, DL1), (SL2, DL2))],
            "angle_fits": {name: angle_fits(runs, study.predictions) for name, runs in trained.items()}}


def trend_frame(trends: list[dict]):
    """``depth_trend`` results as ``plot_depth_trend``'s DataFrame: one row per recipe, family, depth
    and seed (STN-C0 once in each family)."""
    import pandas as pd

    rows = []
    for trend in trends:
        for label, depth in trend["depth"].items():
            families = [trend["family"][label]] if label in trend["family"] else list(DEPTH_TREND)
            for family in families:
                for seed, (accuracy, fit) in enumerate(zip(trend["accuracy"][label], trend["angle_fits"][label])):
                    rows.append({"recipe": trend["recipe"], "family": family, "depth": depth, "seed": seed,
                                 "variant": label, "accuracy": accuracy, "slope": fit["slope"]})
    return pd.DataFrame(rows)


def trend_rows(trends: list[dict]) -> list[PairedComparison]:
    """Each recipe's interaction and SL-against-DL comparisons, for ``plot_paired_differences``, named short
    (``SL2``, not ``STN-SL2 (equal rates)``) with the recipe after them."""
    rows = []
    for trend in trends:
        for values in (trend["interaction"], *trend["comparisons"]):
            short = {name: values[name].replace("STN-", "").replace(f" ({trend['recipe']})", "") for name in "ab"}
            rows.append(PairedComparison.from_dict({**values, "a": short["a"],
                                                    "b": f"{short['b']}, {trend['recipe']} recipe"}))
    return rows


def comparisons_frame(comparisons: list[dict], **columns):
    """Recorded paired comparisons (``PairedComparison.as_dict``) as a DataFrame: comparison, difference,
    its 95 % interval and p-value, one row each; ``columns``: constant columns put first (e.g. ``recipe=``)."""
    import pandas as pd

    return pd.DataFrame([{**columns, "comparison": f"{c['a']} − {c['b']}", "difference": round(c["difference"], 4),
                          "95 % low": round(c["low"], 4), "95 % high": round(c["high"], 4),
                          "p": float(f"{c['p_value']:.2g}")} for c in comparisons])


def seeds_frame(recorded: dict):
    """A recorded ``depth_trend`` or ``iterations_with_more_seeds`` as a DataFrame: one row per variant
    with its mean test accuracy, the spread over seeds, and the mean ST slope and r."""
    import pandas as pd

    rows = []
    for label, accuracies in recorded["accuracy"].items():
        fits = recorded["angle_fits"][label]
        rows.append({"variant": label, "seeds": len(accuracies), "accuracy": round(statistics.mean(accuracies), 4),
                     "std over seeds": round(statistics.stdev(accuracies), 4) if len(accuracies) > 1 else None,
                     "ST slope": round(mean_slopes({label: fits})[label], 2),
                     "ST r": round(statistics.mean(f["correlation"] for f in fits), 2)})
    return pd.DataFrame(rows)


def iterations_with_more_seeds(study: Study, seeds: int) -> dict:
    """C5 under ``C5_RECIPE`` with ``seeds`` seeds: STN-C0x2 − STN-C0 (does a second iteration help?)
    and STN-SL2 − STN-C0x2 (do rich features beat iterations?), with each seed's accuracy and fits."""
    single, double, shared = C5_VARIANTS
    trained = study.trained(C5_VARIANTS, seeds, C5_RECIPE)
    label = C5_RECIPE.label
    return {"recipe": C5_RECIPE.name, "seeds": seeds,
            "accuracy": {row["variant"]: row["accuracies"] for row in accuracy_table(trained)},
            "comparisons": [compare(trained, label(double), label(single)).as_dict(),
                            compare(trained, label(shared), label(double)).as_dict()],
            "angle_fits": {name: angle_fits(runs, study.predictions) for name, runs in trained.items()}}


__all__ = ["C5_RECIPE", "C5_VARIANTS", "DECISIVE_NOTEBOOK", "TREND_RECIPES", "TREND_VARIANTS", "comparisons_frame",
           "depth_trend", "iterations_with_more_seeds", "seeds_frame", "trend_frame", "trend_rows"]
