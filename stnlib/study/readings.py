"""What each experiment notebook's run shows, in sentences built from its recorded numbers
(``Study.results()``): the last section of every notebook. Notebooks that test one of the paper's claims
read its row of the claims table; the quickstart and the equivariant baseline have readings of their own."""
from __future__ import annotations

import statistics

from .claims import DECISIVE_NOTEBOOK, claims_reading

# Recorded key -> the claims its notebook tests.
CLAIMS_OF = {"01_feature_alignment": ("C3",), "02_placement": ("C1", "C2"), "03_localization_depth": ("C4",),
             "04_iterations": ("C5",), DECISIVE_NOTEBOOK: ("C4", "C5"), "07_translation_scale": ("C6",)}


def _range(values: list[float], digits: int = 2) -> str:
    low, high = min(values), max(values)
    return f"{low:.{digits}f}" if round(low, digits) == round(high, digits) else f"{low:.{digits}f}–{high:.{digits}f}"


def quickstart_reading(recorded: dict) -> str:
    """Notebook 00: STN-C0's accuracy over seeds, how much of each rotation its ST undoes, and the recipe
    it replaced."""
    accuracy, fits = recorded["test_accuracy"], recorded["angle_fits"]
    text = (f"{recorded['architecture']} classifies {statistics.mean(accuracy):.1%} of the rotated test digits "
            f"(mean of {len(accuracy)} seeds, {_range([100 * a for a in accuracy], 1)} %). Its ST undoes "
            f"{round(statistics.mean(f['slope'] for f in fits), 2) + 0.0:.0%} of each rotation on average (slope "
            f"{_range([f['slope'] for f in fits])}, r {_range([f['correlation'] for f in fits])} over the seeds).")
    for name, values in recorded.get("alternative_recipes", {}).items():
        text += f" Under the {name}, the ST ends at slope {values['final_slope']:.2f} (r {values['final_r']:.2f})."
    return text


def equivariant_reading(recorded: dict) -> str:
    """Notebook 08: the p4 CNN's accuracy beside the STs', and its exactness under quarter turns."""
    means = {name: statistics.mean(values) for name, values in recorded["accuracy"].items()}
    ranked = ", ".join(f"{name} {value:.1%}" for name, value in sorted(means.items(), key=lambda kv: -kv[1]))
    compared = "; ".join(f"{c['a']} − {c['b']}: {c['difference']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}]"
                         for c in recorded["comparisons"])
    return (f"Test accuracy on rotated digits, best first: {ranked}. Paired on the same images: {compared}. "
            f"A quarter turn of the input changes the P4CNN's logits by at most "
            f"{recorded['quarter_turn_logit_change']:.1g}: it is invariant to quarter turns by construction, "
            "not by training.")


def reading(results: dict[str, dict], key: str) -> str:
    """What the notebook that records under ``key`` shows, in Markdown, from ``results``."""
    if key in CLAIMS_OF:
        return claims_reading(results, CLAIMS_OF[key])
    if key not in results:
        return f"(nothing recorded under {key} yet)"
    if key == "00_quickstart":
        return quickstart_reading(results[key])
    if key == "08_equivariant":
        return equivariant_reading(results[key])
    raise KeyError(f"no reading for {key!r}")


def fits_frame(angle_fits: dict[str, list[dict]]):
    """Angle fits (label -> one ``Study.angle_fits`` dict per seed) as a DataFrame: one row per label and
    seed, with the slope, r and the original's std(true − undone)."""
    import pandas as pd

    return pd.DataFrame([{"ST": label, "seed": seed, "slope": round(f["slope"], 2), "r": round(f["correlation"], 2),
                          "std(true − undone) °": round(f["original_std"], 1)}
                         for label, fits in angle_fits.items() for seed, f in enumerate(fits)])
