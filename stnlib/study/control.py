"""Notebook 07's analyses, the theory's control (claim C6): STN-C0 against STN-C1 on shifted and on zoomed
digits, what each ST undoes, and whether the best spatial correction of the maps aligns them."""
from __future__ import annotations

from dataclasses import replace

from ..evaluation import PairedComparison, orthogonal_fit, spatial_misalignment, true_and_undone
from ..evaluation.controls import SpatialResidual
from .analyses import accuracy_table, compare
from .session import Study
from .settings import PLACED_KINDS
from .variants import C0, C1, CONTROL_VARIANTS

NAMES = {"translate": "shifted", "scale": "zoomed", "rotate": "rotated"}  # what each kind does to a digit
LAYERS = {0: "input", 3: "block 1"}  # where the maps are compared (after block 2 a 28x28 digit's maps are 2x2)


def control_studies(study: Study) -> dict[str, Study]:
    """``study``'s settings on the shifted and on the zoomed digits, by kind."""
    return {kind: study.control_study(kind) for kind in PLACED_KINDS}


def accuracy_and_comparisons(controls: dict[str, Study]) -> tuple[dict[str, list[dict]], dict[str, list]]:
    """Per kind: the ``accuracy_table`` of STN-C0 and STN-C1, and STN-C0 − STN-C1 on the same test images."""
    trained = {kind: control.trained(CONTROL_VARIANTS) for kind, control in controls.items()}
    return ({kind: accuracy_table(runs) for kind, runs in trained.items()},
            {kind: [compare(runs, C0.label, C1.label)] for kind, runs in trained.items()})


def labelled(comparison: PairedComparison, kind: str) -> PairedComparison:
    """``comparison`` with the digits' transformation in both names: ``STN-C0 (shifted)``."""
    return replace(comparison, a=f"{comparison.a} ({NAMES[kind]})", b=f"{comparison.b} ({NAMES[kind]})")


def undone_fits(controls: dict[str, Study]) -> tuple[dict, dict]:
    """Per kind and ST, every seed's orthogonal fit of the undone against the true shift or log2 zoom;
    and seed 0's ``(true, undone)`` tensors, for the 2-D histograms."""
    fits, seed0 = {}, {}
    for kind, control in controls.items():
        fits[kind], seed0[kind] = {}, {}
        for variant in (C0, C1):
            pairs = [true_and_undone(control.predictions(run), kind) for run in control.runs(variant)]
            fits[kind][variant.label] = [orthogonal_fit(true, undone).as_dict() for true, undone in pairs]
            seed0[kind][variant.label] = pairs[0]
    return fits, seed0


def fits_by_kind_frame(fits: dict[str, dict[str, list[dict]]]):
    """``undone_fits``'s fits as a DataFrame: one row per kind, ST and seed."""
    import pandas as pd

    return pd.DataFrame([{"digits": NAMES[kind], "ST": label, "seed": seed, "slope": round(f["slope"], 2),
                          "r": round(f["correlation"], 2)}
                         for kind, by_st in fits.items() for label, per_seed in by_st.items()
                         for seed, f in enumerate(per_seed)])


def feature_alignment(controls: dict[str, Study], images, shift_pixels: float,
                      zoom_factor: float) -> dict[str, list[SpatialResidual]]:
    """Per kind, ``spatial_misalignment`` of seed 0's STN-C1 classifier at ``LAYERS`` on ``images``
    ``(B, 1, H, W)`` shifted by ``shift_pixels`` or zoomed by ``zoom_factor``."""
    return {kind: spatial_misalignment(control.run(C1, seed=0).model, images, kind,
                                       shift_pixels if kind == "translate" else zoom_factor, LAYERS)
            for kind, control in controls.items()}


def alignment_frame(alignment: dict[str, list[SpatialResidual]]):
    """``feature_alignment`` as a DataFrame: per kind and layer, the distance before and after the best
    spatial correction, the resampling floor and the correction found."""
    import pandas as pd

    return pd.DataFrame([{"transformation": NAMES[kind], "where": LAYERS[r.index],
                          "no alignment": round(r.unaligned, 3), "best spatial correction": round(r.residual, 3),
                          "floor": round(r.floor, 3),
                          "best correction": f"{r.best:+.1f} px" if kind == "translate" else f"zoom {r.best:.2f}"}
                         for kind, rows in alignment.items() for r in rows])
