"""The notebooks' tables as pandas DataFrames, values rounded as they are shown: one row per seed (or
per network and layer). Seeds are named ``seed k`` in the dicts these take, as the notebooks key them."""
from __future__ import annotations


def _seed(name: str) -> int:
    return int(name.split()[-1])


def fits_frame(angle_fits: dict[str, list[dict]]):
    """Angle fits (label -> one ``analyses.angle_fits`` dict per seed) as a DataFrame: one row per label and
    seed, with the slope, r and the original's std(true − undone)."""
    import pandas as pd

    return pd.DataFrame([{"ST": label, "seed": seed, "slope": round(f["slope"], 2), "r": round(f["correlation"], 2),
                          "std(true − undone) °": round(f["original_std"], 1)}
                         for label, fits in angle_fits.items() for seed, f in enumerate(fits)])


def run_fits_frame(runs: list, fits: list[dict]):
    """One architecture's runs (``stnlib.runs.Run``) and their angle fits, in the same order: one row per
    seed with its test accuracy, slope, r and std(true − undone)."""
    frame = fits_frame({"": fits}).drop(columns="ST")
    frame["seed"] = [run.metrics["seed"] for run in runs]
    frame.insert(1, "test accuracy", [round(run.metrics["test_accuracy"], 4) for run in runs])
    return frame


def large_error_frame(large: dict[str, tuple[float, float]], limit: float):
    """Per seed (``"seed k"`` -> ``(inner, outer)``, ``AngleErrorTable.large_share_where``): the share of
    undone angles more than 60° off, in %, among the inner and the outer true angles (beyond ``limit``°)."""
    import pandas as pd

    return pd.DataFrame([{"seed": _seed(name), f"error > 60°, |true| ≤ {limit:g}° (%)": round(100 * inner, 1),
                          f"error > 60°, |true| > {limit:g}° (%)": round(100 * outer, 1)}
                         for name, (inner, outer) in large.items()])


def correlation_frame(breakdown: dict[str, dict]):
    """Per seed (``"seed k"`` -> ``evaluation.correlation_breakdown``): r of undone against true angle, r
    without the digits 0, 1 and 8 and without errors over 60°, the share of such errors and how many of
    them are on 0, 1 or 8, in %."""
    import pandas as pd

    return pd.DataFrame([{"seed": _seed(name), "r": round(b["r"], 3), "r without 0, 1, 8": round(b["r_without_symmetric"], 3),
                          "r without errors > 60°": round(b["r_without_large"], 3),
                          "errors > 60° (%)": round(100 * b["large_share"], 1),
                          "of them on 0, 1, 8 (%)": round(100 * b["large_symmetric_share"])}
                         for name, b in breakdown.items()])


def channel_alignment_frame(alignment: dict[str, list], layer_names: dict[int, str]):
    """Per network and layer (``evaluation.channel_alignment`` results): the distance of the maps after
    rotating them back, after also matching channels, and the part only matching channels removes."""
    import pandas as pd

    return pd.DataFrame([{"network": name, "layer": layer_names[a.index], "after rotating back": round(a.spatial, 3),
                          "channels matched too": round(a.with_channels, 3),
                          "part only channels remove": round(a.channel_part, 3)}
                         for name, rows in alignment.items() for a in rows])
