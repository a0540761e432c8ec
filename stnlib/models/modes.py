"""Running a module in eval (or training) mode for a while."""
from __future__ import annotations

import contextlib

from torch import nn


@contextlib.contextmanager
def mode(module: nn.Module, training: bool):
    """``module`` in training mode ``training`` inside the ``with`` block; its own mode comes back
    afterwards, also when the block raises."""
    was_training = module.training
    module.train(training)
    try:
        yield module
    finally:
        module.train(was_training)


def eval_mode(module: nn.Module):
    """``with eval_mode(model):`` runs the block with ``model.eval()`` and restores the mode after."""
    return mode(module, training=False)
