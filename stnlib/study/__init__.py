"""The study: profiles, the architectures compared, the runner the notebooks use, and the claims table."""
from .claims import CLAIMS, ClaimRow, claims_markdown, claims_reading, claims_table
from .decisive import depth_trend, iterations_with_more_seeds, trend_frame
from .readings import fits_frame, reading
from .profiles import PREVIOUS_QUICK_RECIPE, PROFILES, QUICK_RECIPE, Profile, get_profile
from .session import Study, accuracy_markdown
from .training_size import accuracy_vs_training_size
from .variants import (C0, C1, C2, CONTROL_VARIANTS, DEPTH_TREND, DL1, DL2, EQUAL_RATES, PROFILE_RECIPE, Recipe, EQUIVARIANT_VARIANTS, FLAGSHIP, ITERATION_VARIANTS, LOCALIZATION_DEPTH_VARIANTS, NO_ST,
                       P4CNN, PLACEMENT_VARIANTS,
                       SL1, SL2, Variant, iterated)

__all__ = ["fits_frame", "reading", "DEPTH_TREND", "EQUAL_RATES", "PROFILE_RECIPE", "Recipe", "depth_trend", "iterations_with_more_seeds", "trend_frame",
           "accuracy_markdown", "accuracy_vs_training_size", "CLAIMS", "ClaimRow", "claims_markdown", "claims_reading", "claims_table", "PREVIOUS_QUICK_RECIPE", "PROFILES", "Profile", "QUICK_RECIPE", "get_profile", "Study",
           "C0", "C1", "C2", "DL1", "DL2", "FLAGSHIP", "ITERATION_VARIANTS", "LOCALIZATION_DEPTH_VARIANTS", "NO_ST",
           "PLACEMENT_VARIANTS", "P4CNN", "SL1", "SL2", "Variant", "iterated", "EQUIVARIANT_VARIANTS", "CONTROL_VARIANTS"]
