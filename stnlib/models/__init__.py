"""Models: classifier and localization registries, and the STN that combines them."""
from . import classifiers, equivariant, localizations, other_classifiers, other_localizations  # noqa: F401  (register)
from .network import Inspection, NetworkSpec, STNetwork, STRecord, STSlot
from .registry import (CLASSIFIERS, LOCALIZATIONS, build_classifier, build_localization_body,
                       register_classifier, register_localization)


def build_model(config, data) -> STNetwork:
    """The network a ``RunConfig`` describes, for a dataset's ``DataSpec`` (or ``ImageData``)."""
    return STNetwork(
        config.model, data.image_shape, data.num_classes, model_parameters=config.model_parameters,
        localization=config.localization if config.has_st else None,
        localization_parameters=config.localization_parameters,
        stn_placement=config.stn_placement, st_mode=config.st_mode,
        iterative=config.iterative, batchnorm=config.batchnorm, padding_mode=data.padding_mode,
        st_downsample=data.st_downsample, normalize=config.normalize, mean=data.mean, std=data.std,
        grad_scale=config.applied_theta_grad_scale,
    )


__all__ = ["CLASSIFIERS", "LOCALIZATIONS", "Inspection", "NetworkSpec", "STNetwork", "STRecord", "STSlot", "build_classifier",
           "build_localization_body", "build_model", "register_classifier", "register_localization"]
