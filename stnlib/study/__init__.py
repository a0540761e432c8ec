"""The study: profiles, the architectures compared, the runner the notebooks use, and the claims table."""
from .analyses import accuracy_markdown, accuracy_table, angle_fits, compare
from .claims import CLAIMS, ClaimRow, claims_markdown, claims_reading, claims_table
from .decisive import depth_trend, iterations_with_more_seeds, trend_frame
from .profiles import PREVIOUS_QUICK_RECIPE, PROFILES, QUICK_RECIPE, Profile, get_profile
from .frames import (channel_alignment_frame, correlation_frame, fits_frame, large_error_frame,
                     run_fits_frame)
from .readings import reading
from .session import Study
from .settings import StudySettings
from .training_size import accuracy_vs_training_size
from .variants import (C0, C1, C2, CONTROL_VARIANTS, DEPTH_TREND, DL1, DL2, EQUAL_RATES, EQUIVARIANT_VARIANTS, FLAGSHIP,
                       ITERATION_VARIANTS, LOCALIZATION_DEPTH_VARIANTS, NO_ST, P4CNN, PLACEMENT_VARIANTS,
                       PROFILE_RECIPE, SL1, SL2, Recipe, Variant, iterated)

__all__ = [
    # the study and its outputs
    "Study", "StudySettings",
    # analyses of trained runs
    "accuracy_markdown", "accuracy_table", "accuracy_vs_training_size", "angle_fits", "compare", "reading",
    "channel_alignment_frame", "correlation_frame", "fits_frame", "large_error_frame", "run_fits_frame",
    "CLAIMS", "ClaimRow", "claims_markdown", "claims_reading", "claims_table",
    "depth_trend", "iterations_with_more_seeds", "trend_frame",
    # profiles and recipes
    "PREVIOUS_QUICK_RECIPE", "PROFILES", "Profile", "QUICK_RECIPE", "get_profile",
    "EQUAL_RATES", "PROFILE_RECIPE", "Recipe",
    # architectures
    "C0", "C1", "C2", "DL1", "DL2", "FLAGSHIP", "NO_ST", "P4CNN", "SL1", "SL2", "Variant", "iterated",
    "CONTROL_VARIANTS", "DEPTH_TREND", "EQUIVARIANT_VARIANTS", "ITERATION_VARIANTS", "LOCALIZATION_DEPTH_VARIANTS",
    "PLACEMENT_VARIANTS",
]
