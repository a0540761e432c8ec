"""fourier_conv2d and FourierConv2d: the convolution of nn.Conv2d through the Fourier domain of a small canvas."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stnlib.models import STNetwork, plain_layers, use_cpu_fast_paths
from stnlib.models.fourier_conv import FourierConv2d, fourier_conv2d, fourier_matrices, fourier_pays


@pytest.mark.parametrize("shape", [
    (3, 2, 4, 10, 10, 7, 7),   # even canvas: the Nyquist row and column are kept once
    (2, 3, 2, 11, 9, 5, 3),    # odd sizes, a non-square kernel
    (2, 2, 3, 7, 8, 7, 1),     # a kernel as tall as the canvas
])
def test_forward_and_both_gradients_are_the_direct_convolutions(shape):
    n, c_in, c_out, height, width, kh, kw = shape
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, c_in, height, width, dtype=torch.float64, generator=generator, requires_grad=True)
    weight = torch.randn(c_out, c_in, kh, kw, dtype=torch.float64, generator=generator, requires_grad=True)
    bias = torch.randn(c_out, dtype=torch.float64, generator=generator, requires_grad=True)
    torch.testing.assert_close(fourier_conv2d(x, weight, bias), F.conv2d(x, weight, bias))
    assert torch.autograd.gradcheck(fourier_conv2d, (x, weight, bias))
    assert torch.autograd.gradcheck(fourier_conv2d, (x, weight, None))


def test_the_kept_bins_hold_exactly_a_real_canvas():
    # 10x10 real numbers: 4 real bins and 48 complex ones, 100 numbers in all
    canvas, kernel, output = fourier_matrices(10, 10, 7, 7, torch.float64)
    assert canvas.shape == (104, 100) and kernel.shape == (104, 49) and output.shape == (16, 104)
    assert torch.linalg.matrix_rank(canvas) == 100


def test_it_pays_for_the_cnns_second_convolution_only():
    assert fourier_pays(10, 10, 7, 7, 64, 64)           # MNIST's CNN, 64 -> 64 channels on 10x10
    assert not fourier_pays(28, 28, 9, 9, 1, 64)        # its first convolution: one input channel
    assert not fourier_pays(52, 52, 7, 7, 64, 64)       # scale5k's second convolution: a large canvas
    assert not fourier_pays(10, 10, 7, 7, 4, 4)         # few channels: the transforms cost more
    assert not fourier_pays(5, 5, 7, 7, 64, 64)         # no valid output


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_module_matches_nn_conv2d_in_fp32_and_keeps_the_memory_format(memory_format):
    torch.manual_seed(0)
    reference = nn.Conv2d(64, 64, 7).to(memory_format=memory_format)
    fourier = FourierConv2d(64, 64, 7).to(memory_format=memory_format)
    fourier.load_state_dict(reference.state_dict())
    x = torch.randn(5, 64, 10, 10).contiguous(memory_format=memory_format)
    xs = [x.clone().requires_grad_(), x.clone().requires_grad_()]
    assert fourier._fourier_applies(xs[1])
    outputs = [reference(xs[0]), fourier(xs[1])]
    assert outputs[1].is_contiguous(memory_format=memory_format)
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(outputs[0])
    for output in outputs:
        output.backward(grad)
    torch.testing.assert_close(xs[1].grad, xs[0].grad, rtol=1e-5, atol=1e-5)
    assert xs[1].grad.is_contiguous(memory_format=memory_format)
    torch.testing.assert_close(fourier.weight.grad, reference.weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fourier.bias.grad, reference.bias.grad)


@pytest.mark.parametrize("case", ["padding", "float64", "bf16 autocast", "large canvas", "no gradients"])
def test_other_cases_take_nn_conv2ds_path_to_the_bit(case):
    torch.manual_seed(0)
    options = {"padding": 2} if case == "padding" else {}
    reference, fourier = nn.Conv2d(64, 64, 7, **options), FourierConv2d(64, 64, 7, **options)
    fourier.load_state_dict(reference.state_dict())
    x = torch.randn(2, 64, *[40 if case == "large canvas" else 10] * 2)
    if case == "float64":
        reference, fourier, x = reference.double(), fourier.double(), x.double()
    with (torch.autocast("cpu", dtype=torch.bfloat16, enabled=case == "bf16 autocast"),
          torch.set_grad_enabled(case != "no gradients")):
        assert not fourier._fourier_applies(x)
        assert torch.equal(fourier(x), reference(x))


def test_the_cnn_trains_its_second_convolution_through_the_fourier_domain():
    torch.manual_seed(0)
    net = use_cpu_fast_paths(STNetwork("CNN", (1, 28, 28), 10, localization="CNN", stn_placement=[0]))
    assert [type(net.layers[i]).__name__ for i in (0, 3)] == ["ImageConv2d", "FourierConv2d"]
    plain = STNetwork("CNN", (1, 28, 28), 10, localization="CNN", stn_placement=[0])
    assert [type(plain.layers[i]) for i in (0, 3)] == [nn.Conv2d, nn.Conv2d]  # the paper's layers
    plain.load_state_dict(net.state_dict())
    images, labels = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    for model in (net, plain):
        F.cross_entropy(model(images), labels).backward()
    for (name, ours), theirs in zip(net.named_parameters(), plain.parameters()):
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("options", [dict(localization="FCN", stn_placement=[0]),
                                     dict(localization="FCN", stn_placement=[6], st_mode="deep"),
                                     dict(model="CNNb", localization="FCN", stn_placement=[1], st_mode="loop")],
                         ids=["STN-C0", "STN-DL2", "CNNb STN-SL1"])
def test_fast_and_plain_forms_of_the_paper_cnn_agree(options):
    """build_model's fast CPU forms: the same state dict, the same outputs in evaluation, and gradients
    equal to rounding in training; plain_layers gives the paper's nn.Conv2d back."""
    options = {"model": "CNN", **options}
    torch.manual_seed(0)
    fast = use_cpu_fast_paths(STNetwork(options.pop("model"), (1, 28, 28), 10, **options))
    fast_convs = [type(m).__name__ for m in fast.modules() if isinstance(m, nn.Conv2d)]
    assert fast_convs.count("ImageConv2d") == 1 + (options.get("st_mode") == "deep")  # DL's copy too
    assert "FourierConv2d" in fast_convs
    plain = plain_layers(copy.deepcopy(fast))
    assert {type(m) for m in plain.modules() if isinstance(m, nn.Conv2d)} == {nn.Conv2d}
    assert fast.state_dict().keys() == plain.state_dict().keys()
    images, labels = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    with torch.no_grad():
        assert torch.equal(fast.eval()(images), plain.eval()(images))
    for model in (fast.train(), plain.train()):
        F.cross_entropy(model(images), labels).backward()
    for (name, ours), theirs in zip(fast.named_parameters(), plain.parameters()):  # equal up to fp32 rounding
        assert (ours.grad - theirs.grad).abs().max() <= 1e-5 * theirs.grad.abs().max() + 1e-7, name
