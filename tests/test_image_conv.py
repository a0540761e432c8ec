"""ImageConv2d: the same convolution as nn.Conv2d, with its input gradient computed by input_gradient."""
import pytest
import torch
from torch import nn

from stnlib.models.image_conv import ImageConv2d, input_gradient


@pytest.mark.parametrize("in_channels, kernel, padding", [(1, 9, 0), (3, 5, 2), (2, 3, 1)])
def test_outputs_and_every_gradient_match_conv2d(in_channels, kernel, padding):
    torch.manual_seed(0)
    reference = nn.Conv2d(in_channels, 8, kernel, padding=padding)
    image_conv = ImageConv2d(in_channels, 8, kernel, padding=padding)
    image_conv.load_state_dict(reference.state_dict())
    x = torch.rand(4, in_channels, 17, 15)
    grads = []
    for conv, memory_format in ((reference, torch.contiguous_format), (image_conv, torch.channels_last)):
        leaf = x.clone().contiguous(memory_format=memory_format).requires_grad_()
        out = conv(leaf)
        out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
        grads.append((out.detach(), leaf.grad, conv.weight.grad, conv.bias.grad))
    for ours, theirs in zip(grads[1], grads[0]):
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_input_gradient_does_not_depend_on_the_filters_memory_format():
    """A model moved to channels-last memory holds its one-channel filters with ambiguous strides;
    the input gradient must come from the same kernel, to the bit, either way."""
    torch.manual_seed(0)
    state = ImageConv2d(1, 64, 9).state_dict()
    x = torch.rand(16, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    grads = []
    for memory_format in (torch.contiguous_format, torch.channels_last):
        conv = ImageConv2d(1, 64, 9)
        conv.load_state_dict(state)
        conv.to(memory_format=memory_format)
        leaf = x.clone().requires_grad_()
        out = conv(leaf)
        out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
        grads.append(leaf.grad)
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("memory_format", [torch.channels_last, torch.contiguous_format])
def test_input_gradient_is_atens_transposed_convolution_to_the_bit_for_one_channel(memory_format):
    """The flagship's shapes: one-channel 28x28 digits, 64 filters of 9x9."""
    torch.manual_seed(0)
    grad_out = torch.randn(12, 64, 20, 20).contiguous(memory_format=memory_format)
    weight = torch.randn(64, 1, 9, 9)
    reference = torch.ops.aten.slow_conv_transpose2d(grad_out.contiguous(), weight, [9, 9], None, [1, 1], [0, 0],
                                                     [0, 0], [1, 1])
    ours = input_gradient(grad_out, weight, (0, 0), (28, 28))
    assert ours.shape == (12, 1, 28, 28)
    assert torch.equal(ours, reference)


def test_input_gradient_crops_the_padding():
    torch.manual_seed(0)
    grad_out, weight = torch.randn(3, 4, 10, 9), torch.randn(4, 2, 5, 3)
    reference = torch.nn.grad.conv2d_input((3, 2, 10, 9), weight, grad_out, padding=(2, 1))
    torch.testing.assert_close(input_gradient(grad_out, weight, (2, 1), (10, 9)), reference)


def test_other_cases_take_the_plain_path():
    conv = ImageConv2d(1, 4, 3)
    x = torch.rand(2, 1, 8, 8, requires_grad=True)
    assert conv._transposed_input_grad_applies(x)
    assert not conv._transposed_input_grad_applies(x.detach())  # no input gradient wanted
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not conv._transposed_input_grad_applies(x)
    assert not ImageConv2d(1, 4, 3, stride=2)._transposed_input_grad_applies(x)


def test_state_dict_is_conv2d_s():
    assert set(ImageConv2d(1, 4, 3).state_dict()) == set(nn.Conv2d(1, 4, 3).state_dict())
