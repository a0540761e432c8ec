"""The localization network: features in, an affine theta out, starting at the identity."""
from __future__ import annotations

import torch
from torch import nn

from .registry import flat_size


IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # theta of the identity warp, flattened


class Localization(nn.Module):
    """``prefix`` then ``body`` then a Linear layer to the 6 entries of theta, plus the identity.

    As in the original, the Linear layer starts at zero (weights and bias) and the identity is a
    fixed buffer added to its output, so a fresh ST is an identity warp and weight decay pulls
    theta toward the identity, not toward a collapsed zoom. ``prefix`` holds fresh copies of
    classifier layers for STN-DLk and is empty otherwise.

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
        nn.init.zeros_(self.affine.bias)
        self.register_buffer("identity", torch.tensor(IDENTITY))
        self.grad_scale = grad_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.body(self.prefix(x)).flatten(1)
        # theta in fp32 even under bf16 autocast: bf16 steps near 1 are 2**-7, too coarse for theta.
        with torch.autocast(device_type=features.device.type, enabled=False):
            features = features.to(torch.promote_types(features.dtype, torch.float32))
            theta = (self.affine(features) + self.identity).view(-1, 2, 3)
        if self.grad_scale != 1.0:  # the same theta; its gradient times grad_scale
            frozen = theta.detach()
            theta = frozen + (theta - frozen) * self.grad_scale  # no hook: torch.func.vmap batches this
        return theta

    @torch.no_grad()
    def set_constant_theta(self, theta: torch.Tensor) -> None:
        """Make this network output ``theta`` (``(2, 3)`` or ``(1, 2, 3)``) for every input."""
        self.affine.weight.zero_()
        self.affine.bias.copy_(theta.reshape(6) - self.identity)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Weights saved before the identity became a buffer hold it in the bias: move it out.
        if prefix + "identity" not in state_dict and prefix + "affine.bias" in state_dict:
            identity = torch.tensor(IDENTITY, dtype=state_dict[prefix + "affine.bias"].dtype)
            state_dict[prefix + "affine.bias"] = state_dict[prefix + "affine.bias"] - identity
            state_dict[prefix + "identity"] = identity
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def fresh_copy(layers: list[nn.Module]) -> nn.Sequential:
    """Copies of ``layers`` with newly initialised parameters (for STN-DLk)."""
    import copy

    clone = copy.deepcopy(nn.Sequential(*layers))
    for module in clone.modules():
        if module is not clone and hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return clone
