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
    text += _where_it_errs(recorded)
    for name, values in recorded.get("alternative_recipes", {}).items():
        text += f" Under the {name}, the ST ends at slope {values['final_slope']:.2f} (r {values['final_r']:.2f})."
    return text


def _where_it_errs(recorded: dict) -> str:
    """Notebook 00's sections 5 and 6: where along the true angle the undone angle errs, and what the
    large errors do to r; empty where they were not recorded."""
    by_angle, breakdown = recorded.get("error_by_true_angle"), recorded.get("correlation_breakdown")
    if not by_angle or not breakdown:
        return ""
    inner, outer = [], []
    for table in by_angle.values():
        edge = max(abs(c) for c in table["centres"]) * 2 / 3 + 1e-9
        for centre, mean in zip(table["centres"], table["mean"]):
            if mean != mean:  # an empty bin
                continue
            (outer if abs(centre) > edge else inner).append(abs(mean))
    threshold = f"{next(iter(breakdown.values())).get('large_error', 60.0):g}°"
    values = list(breakdown.values())
    return (f" Its mean error stays within {max(inner):.0f}° of zero on every seed in the inner two thirds of the range"
            f" and reaches {max(outer):.0f}° in the outer third, where a turn by +90° and one by −90° differ by a"
            f" half-turn. {_range([100 * b['large_share'] for b in values], 1)} % of the digits per seed come back"
            f" more than {threshold} off, {_range([100 * b['large_symmetric_share'] for b in values], 0)} % of them"
            f" 0s, 1s and 8s, the digits that look alike after a half-turn; without those errors r is"
            f" {_range([b['r_without_large'] for b in values], 3)}.")


def readings_markdown(results: dict[str, dict]) -> str:
    """The readings that the claims table does not give, of the notebooks that recorded numbers in
    ``results``: the quickstart's and the equivariant baseline's, each under its notebook's name."""
    names = {"00_quickstart": "Notebook 00, the input ST", "08_equivariant": "Notebook 08, the equivariant baseline"}
    return "\n\n".join(f"**{title}.** {reading(results, key)}" for key, title in names.items() if key in results)


def equivariant_reading(recorded: dict) -> str:
    """Notebook 08: the p4 CNN's accuracy beside the STs', and its exactness under quarter turns."""
    means = {name: statistics.mean(values) for name, values in recorded["accuracy"].items()}
    ranked = ", ".join(f"{name} {value:.1%}" for name, value in sorted(means.items(), key=lambda kv: -kv[1]))
    compared = "; ".join(f"{c['a']} − {c['b']}: {c['difference']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}]"
                         for c in recorded["comparisons"])
    return (f"Test accuracy on rotated digits, best first: {ranked}. Paired on the same images: {compared}. "
            f"A quarter turn of the input changes the P4CNN's logits by at most "
            f"{recorded['quarter_turn_logit_change']:.1g}: it is invariant to quarter turns by construction, "
            "not by training." + _sizes(recorded.get("sizes", {})))


def _sizes(sizes: dict[str, dict]) -> str:
    """Notebook 08's parameter counts and training speeds (images/s on one thread), P4CNN first."""
    if "P4CNN" not in sizes:
        return ""
    p4 = sizes["P4CNN"]
    others = [(name, size) for name, size in sizes.items() if name != "P4CNN"]
    counts = ", ".join(f"{name} {size['parameters']:,}" for name, size in others)
    slower = ", ".join(f"{size['images_per_second'] / p4['images_per_second']:.1f}× {name}'s" for name, size in others)
    return (f" It has {p4['parameters']:,} parameters ({counts}) and trains at {p4['images_per_second']:,.0f} images/s"
            f" on one thread: a training image costs it {slower} time.")


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

