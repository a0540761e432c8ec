"""The architectures the study compares, by readable name."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Variant:
    """One architecture: classifier, localization and placements (the CLI's -m, -l, -p, --loop, --deep)."""

    label: str
    localization: str | None = None  # None: no ST
    stn_placement: tuple[int, ...] = field(default_factory=tuple)
    loop: bool = False
    deep: bool = False
    model: str = "CNN"

    @property
    def folder_name(self) -> str:
        return self.label.replace(" ", "_").replace("/", "-")


NO_ST = Variant("no ST")
FLAGSHIP = Variant("STN-C0 (CNN loc)", "CNN", (0,))
# The CNN classifier's layer indices 0, 3, 6 are the input, and after blocks 1 and 2.
C0, C1, C2 = (Variant(f"STN-C{k}", "FCN", (index,)) for k, index in enumerate((0, 3, 6)))
SL1, SL2 = (Variant(f"STN-SL{k}", "FCN", (index,), loop=True) for k, index in ((1, 3), (2, 6)))
DL1, DL2 = (Variant(f"STN-DL{k}", "FCN", (index,), deep=True) for k, index in ((1, 3), (2, 6)))

# What the quick profile trains, with 3 seeds each: C0 against C1 and against the
# classifier without ST (C2 would add a model per seed), SL2 against DL2 (the pair where the paper
# expects DL to fail), C0 against two iterations of C0. Notebooks take other tuples as well.
# The field's other answer: a CNN made invariant to quarter turns by construction (p4 group
# convolutions, stnlib.models.equivariant), with about the CNN's number of parameters and no ST.
P4CNN = Variant("P4CNN", model="P4CNN")

PLACEMENT_VARIANTS = (C0, C1, NO_ST)
LOCALIZATION_DEPTH_VARIANTS = (SL2, DL2)
DEPTH_TREND = {"SL": (C0, SL1, SL2), "DL": (C0, DL1, DL2)}  # notebook 05: depth k = 0, 1, 2 (STN-C0 is k = 0)


def iterated(variant: Variant, iterations: int) -> Variant:
    """``variant`` with its ST applied ``iterations`` times (a repeated placement index)."""
    if iterations == 1:
        return variant
    return Variant(f"{variant.label}x{iterations}", variant.localization, variant.stn_placement * iterations,
                   variant.loop, variant.deep, variant.model)


ITERATION_VARIANTS = (C0, iterated(C0, 2))
EQUIVARIANT_VARIANTS = (P4CNN, NO_ST, C0, SL2)  # notebook 08: the equivariant CNN beside the study's answers
# Notebook 07: the input ST against the feature-map ST on shifted and zoomed digits (no claim needs the
# classifier without ST there; its six runs would add about a minute on 2 CPU cores).
CONTROL_VARIANTS = (C0, C1)


@dataclass(frozen=True)
class Recipe:
    """A change to the profile's recipe for the runs of one comparison: RunConfig options for STN-DLk
    (``deep``) and for STN-SLk (``loop``), as ``(name, value)`` pairs; other variants train as the
    profile says. The recipe's runs get folders of their own (their options in the name)."""

    name: str
    deep: tuple[tuple[str, object], ...] = ()
    loop: tuple[tuple[str, object], ...] = ()

    def options(self, variant: Variant) -> dict:
        return dict(self.deep if variant.deep else self.loop if variant.loop else ())

    def label(self, variant: Variant) -> str:
        """``variant``'s label, followed by the recipe's name where it changes the variant's runs."""
        return f"{variant.label} ({self.name})" if self.options(variant) else variant.label


# The profile's own recipe. Under the quick recipe the localization learns 10x faster than the classifier, so
# STN-DLk's copies of the classifier's blocks (part of its localization) learn at 10x, while STN-SLk's shared
# blocks (part of the classifier) learn at 1x: the two do not get the same treatment.
PROFILE_RECIPE = Recipe("profile")
# Equal rates: STN-DLk's copied blocks learn at the classifier's rate, as STN-SLk's shared blocks do; only
# the localization's own layers (the FCN and theta's layer) learn faster. The original's default
# (--loc-lr-multiplier 1) and the paper profile train every layer at one rate, so they treat both alike too.
EQUAL_RATES = Recipe("equal rates", deep=(("loc_copies_lr_multiplier", 1.0),))
