"""Models: classifier and localization registries, and the STN that combines them."""
from . import classifiers, equivariant, localizations, other_classifiers, other_localizations  # noqa: F401  (register)
from .cpu_fast_paths import plain_layers, use_cpu_fast_paths
from .network import Inspection, NetworkSpec, STNetwork, STRecord, STSlot
from .registry import (CLASSIFIERS, LOCALIZATIONS, build_classifier, build_localization_body,
                       register_classifier, register_localization)


def build_model(config, data, cpu_fast_paths: bool = True) -> STNetwork:
    """The network a ``RunConfig`` describes, for a dataset's ``DataSpec`` (or ``ImageData``); with
    ``cpu_fast_paths``, the CNN's convolutions in their fast CPU forms (``use_cpu_fast_paths``: the same
    parameters and state dict, and the same numbers outside CPU fp32 training)."""
    model = STNetwork(
        config.model, data.image_shape, data.num_classes, model_parameters=config.model_parameters,
        localization=config.localization if config.has_st else None,
        localization_parameters=config.localization_parameters,
        stn_placement=config.stn_placement, st_mode=config.st_mode,
        iterative=config.iterative, batchnorm=config.batchnorm, padding_mode=data.padding_mode,
        st_downsample=data.st_downsample, normalize=config.normalize, mean=data.mean, std=data.std,
        grad_scale=config.applied_theta_grad_scale,
    )
    return use_cpu_fast_paths(model) if cpu_fast_paths else model


__all__ = ["CLASSIFIERS", "LOCALIZATIONS", "Inspection", "NetworkSpec", "STNetwork", "STRecord", "STSlot", "build_classifier",
           "build_localization_body", "build_model", "plain_layers", "use_cpu_fast_paths", "register_classifier", "register_localization"]
