"""The localization network: features in, an affine theta out, starting at the identity."""
from __future__ import annotations

import torch
from torch import nn

from .registry import flat_size


class Localization(nn.Module):
    """``prefix`` then ``body`` then a Linear layer to the 6 entries of theta.

    The Linear layer has zero weights and the identity as bias, so a fresh ST
    is an identity warp. ``prefix`` holds fresh copies of classifier layers for
    STN-DLk and is empty otherwise.

    ``grad_scale`` (``--hook-llr``) multiplies the gradient that flows back
    through theta into this network and the layers before it.

    Input: whatever ``prefix`` reads, ``(B, *in_shape)``. Output: ``(B, 2, 3)`` float32; the
    affine layer runs in float32 under autocast too.
    """

    def __init__(self, body: nn.Module, in_shape, prefix: nn.Module | None = None, grad_scale: float = 1.0):
        super().__init__()
        self.prefix = prefix if prefix is not None else nn.Sequential()
        self.body = body
        self.affine = nn.Linear(flat_size(nn.Sequential(self.prefix, self.body), in_shape), 6)
        nn.init.zeros_(self.affine.weight)
        with torch.no_grad():
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))
        self.grad_scale = grad_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.body(self.prefix(x)).flatten(1)
        # theta in fp32 even under bf16 autocast: bf16 steps near 1 are 2**-7, too coarse for theta.
        with torch.autocast(device_type=features.device.type, enabled=False):
            theta = self.affine(features.float()).view(-1, 2, 3)
        if self.grad_scale != 1.0 and theta.requires_grad:
            theta.register_hook(lambda grad: grad * self.grad_scale)
        return theta


def fresh_copy(layers: list[nn.Module]) -> nn.Sequential:
    """Copies of ``layers`` with newly initialised parameters (for STN-DLk)."""
    import copy

    clone = copy.deepcopy(nn.Sequential(*layers))
    for module in clone.modules():
        if module is not clone and hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return clone
