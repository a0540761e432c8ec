"""Training: one ``RunConfig`` in, a run folder out.

``fit`` (``invocation.py``) checks the options, prepares the run folder and the data, and trains each run;
``Trainer`` (``trainer.py``) owns one run's model, optimizer, schedule and random state;
``RunGroup`` (``group.py``) trains several runs of one configuration as one stacked model, in one step.
"""
from .invocation import RESUME_MAY_CHANGE, Place, fit, fit_together, seed_groups, train_places
from .group import RunGroup, group_obstacle, trains_together
from .trainer import (READ_BACK_STEPS, EpochProgress, Interrupted, RunResult, Trainer, build_optimizer,
                      build_scheduler, format_epoch, load_weights, moment_alignment_error,
                      original_reported_accuracy, seed_everything)

__all__ = ["READ_BACK_STEPS", "RESUME_MAY_CHANGE", "EpochProgress", "Interrupted", "RunGroup",
           "Place", "RunResult", "Trainer", "build_optimizer", "build_scheduler", "fit", "fit_together", "train_places", "format_epoch", "group_obstacle",
           "load_weights", "moment_alignment_error", "original_reported_accuracy", "seed_everything", "seed_groups",
           "trains_together"]
