"""Evaluation: every helper returns data and has a plotting function next to it.

Works for any registered dataset and model, and for every ST of a model.

| helper | plot |
|---|---|
| ``test_accuracy`` (N rotated passes), ``evaluate`` | |
| ``collect_predictions`` (labels, predictions, true angles, every theta) | |
| ``accuracy_by_angle``, ``accuracy_under_rotations`` (17 fixed test rotations) | ``plot_accuracy_by_angle``, ``plot_accuracy_under_rotations`` |
| ``confusion_matrix`` | ``plot_confusion_matrix`` |
| ``stnlib.study.accuracy_vs_training_size`` (trains) | ``plot_accuracy_vs_training_size`` |
| training history (``Run.history``) | ``plot_history`` |
| ``st_views`` (images before and after each ST) | ``plot_st_views``, ``plot_digits`` |
| ``feature_maps_around_st`` | ``plot_feature_maps`` |
| ``predicted_angles``, ``orthogonal_fit``, ``per_label_angle_statistics`` | ``plot_angle_histogram``, ``plot_large_errors_by_label`` |
| ``correlation_breakdown`` (r without the half-turn-symmetric digits, without the large errors) | |
| ``angle_error_by_true_angle`` (where along the true angle the ST errs) | ``plot_angle_error_by_true_angle`` |
| ``transformation_statistics`` (predicted distance and scale) | ``plot_transformation_statistics`` |
| ``compare_transformations`` (several models side by side), ``upright_targets`` (what a perfect ST outputs) | ``plot_compare_transformations`` |
| ``gradient_magnitudes`` | ``plot_gradient_magnitudes`` |
| ``first_layer_filters`` | ``plot_filters`` |
| ``feature_misalignment`` (C3), ``same_class_distance`` (its yardstick), ``rotated_feature_maps`` | ``plot_misalignment``, ``plot_rotated_feature_maps`` |
| ``channel_correspondence``, ``edge_responses``, ``most_oriented_image`` (the channel effect) | ``plot_channel_correspondence``, ``plot_edge_responses`` |
| ``channel_alignment`` (spatial vs spatial + channel matching), ``rotation_symmetric_copy`` (control) | |
| ``test_correctness`` (per image, per pass), ``paired_comparison`` (bootstrap, McNemar), ``paired_interaction`` | ``plot_paired_differences`` |
| test accuracy of every seed (``stnlib.study.accuracy_table``) | ``plot_accuracy_over_seeds`` |
| accuracy and ST slope against localization depth (C4 as a trend) | ``plot_depth_trend`` |
| ``spatial_misalignment`` (C6: the best spatial shift or zoom of the maps), ``true_and_undone`` | ``plot_spatial_misalignment``, ``plot_true_vs_undone`` |

Every plot follows ``stnlib.plotting``'s house style (seaborn theme, one colour per architecture,
shared colour scales with colour bars, the training range marked).
"""
from .accuracy import (AngleAccuracy, Score, accuracy_by_angle, accuracy_under_rotations, confusion_matrix, evaluate,
                       plot_accuracy_by_angle, plot_accuracy_under_rotations,
                       plot_confusion_matrix, test_accuracy, test_correctness)
from .angles import (HALF_TURN_SYMMETRIC_DIGITS, AngleErrorByTrueAngle, AngleFit, TransformationStatistics,
                     angle_error_by_true_angle, correlation_breakdown, orthogonal_fit, per_label_angle_statistics,
                     plot_angle_error_by_true_angle, plot_angle_histogram, plot_large_errors_by_label,
                     plot_transformation_statistics, predicted_angles, transformation_statistics)
from .controls import (SpatialResidual, plot_spatial_misalignment, plot_true_vs_undone, spatial_misalignment,
                       transform_images, true_and_undone)
from .features import (ChannelAlignment, Misalignment, channel_alignment, channel_correspondence,
                       rotation_symmetric_copy, edge_responses, feature_misalignment,
                       plot_rotated_feature_maps, rotated_feature_maps,
                       features_at, first_layer_filters, gradient_magnitudes, plot_channel_correspondence,
                       plot_channel_alignment, plot_edge_responses, plot_filters, plot_gradient_magnitudes, plot_misalignment,
                       most_oriented_image, same_class_distance, self_match_rate)
from .history import plot_accuracy_vs_training_size, plot_history, plot_st_learning
from .paired import PairedComparison, paired_comparison, paired_interaction
from .passes import Predictions, collect_predictions
from .trend import plot_depth_trend
from .seeds import plot_accuracy_over_seeds, plot_paired_differences
from .views import (compare_transformations, feature_maps_around_st, plot_compare_transformations, plot_digits, upright_targets,
                    plot_feature_maps, plot_st_views, st_views)

__all__ = [name for name in dir() if not name.startswith("_")]
