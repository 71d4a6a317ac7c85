"""Convolutions on tiny CPU inputs as matrix products (models/gemm_convs.py): same outputs and
gradients as PyTorch's convolutions, used only where they apply, invisible to checkpoints and export."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from models.gemm_convs import GemmConv2d, GemmConvTranspose2d, route_small_convs_through_gemm


def _outputs_and_grads(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.clone().requires_grad_()
    out = module(x)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()  # a non-uniform upstream gradient
    grads = tuple(p.grad.clone() for p in module.parameters())
    return (out.detach(), x.grad, *grads)


def assert_routed_equals_native(native: nn.Module, routed_type: type, x: torch.Tensor) -> None:
    """The routed copy of ``native`` is a ``routed_type`` whose output and gradients equal the native layer's."""
    routed = route_small_convs_through_gemm(copy.deepcopy(native), max_side=16)
    assert type(routed) is routed_type
    for ours, reference in zip(_outputs_and_grads(routed, x), _outputs_and_grads(native, x)):
        assert ours.shape == reference.shape
        torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)


CONV_CASES = [  # (in, out, kernel, stride, padding, bias, input side)
    (8, 16, 4, 2, 1, True, 8), (8, 16, 4, 2, 1, False, 2), (8, 16, 4, 2, 1, False, 3),
    (6, 5, 3, 1, 1, True, 7), (6, 5, 1, 1, 0, True, 4), (3, 4, (3, 5), (1, 2), (0, 2), True, 6)]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_as_gemm_equals_native(case: tuple) -> None:
    cin, cout, kernel, stride, padding, bias, side = case
    torch.manual_seed(0)
    native = nn.Conv2d(cin, cout, kernel, stride, padding, bias=bias)
    assert_routed_equals_native(native, GemmConv2d, torch.randn(3, cin, side, side + 1))


TRANSPOSED_CASES = [  # (in, out, kernel, stride, padding, output_padding, bias, input side)
    (16, 8, 4, 2, 1, 0, True, 1), (16, 8, 4, 2, 1, 0, False, 4), (6, 5, 3, 2, 1, 1, True, 5),
    (6, 5, 3, 1, 1, 0, True, 3), (4, 3, (2, 4), (2, 1), (0, 1), 0, False, 6)]


@pytest.mark.parametrize("case", TRANSPOSED_CASES)
def test_conv_transpose2d_as_gemm_equals_native(case: tuple) -> None:
    cin, cout, kernel, stride, padding, output_padding, bias, side = case
    torch.manual_seed(0)
    native = nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding, bias=bias)
    assert_routed_equals_native(native, GemmConvTranspose2d, torch.randn(2, cin, side, side + 2))


def test_gemm_path_is_taken_only_on_small_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The matrix-product form runs for inputs of at most max_side px per side and nowhere else."""
    import models.gemm_convs as gemm_convs
    calls = []
    original = gemm_convs.conv2d_as_gemm
    monkeypatch.setattr(gemm_convs, "conv2d_as_gemm", lambda *args: calls.append(args[0].shape) or original(*args))
    conv = route_small_convs_through_gemm(nn.Conv2d(2, 2, 3, padding=1), max_side=8)
    conv(torch.randn(1, 2, 8, 8))
    conv(torch.randn(1, 2, 9, 8))
    conv(torch.randn(1, 2, 4, 16))
    assert calls == [torch.Size([1, 2, 8, 8])]


def test_bf16_autocast_matches_native_within_bf16_precision() -> None:
    torch.manual_seed(0)
    native = nn.ConvTranspose2d(32, 16, 4, 2, 1)
    routed = route_small_convs_through_gemm(copy.deepcopy(native), max_side=16)
    x = torch.randn(1, 32, 2, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours, reference = routed(x), native(x)
    assert ours.dtype == reference.dtype == torch.bfloat16
    torch.testing.assert_close(ours.float(), reference.float(), rtol=2e-2, atol=2e-2)


def test_routing_leaves_other_layers_parameters_and_keys_alone() -> None:
    net = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1, groups=2),
                        nn.Conv2d(4, 4, 3, padding=2, dilation=2),
                        nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), nn.Conv2d(4, 4, 3, padding="same"),
                        nn.ConvTranspose2d(4, 4, 4, 2, 1), nn.BatchNorm2d(4))
    parameters, keys = list(net.parameters()), list(net.state_dict())
    route_small_convs_through_gemm(net, max_side=16)
    assert [type(m) for m in net] == [GemmConv2d, nn.Conv2d, nn.Conv2d, nn.Conv2d, nn.Conv2d, GemmConvTranspose2d,
                                      nn.BatchNorm2d]
    assert all(a is b for a, b in zip(net.parameters(), parameters))  # optimizers built before keep working
    assert list(net.state_dict()) == keys
    assert route_small_convs_through_gemm(nn.Conv2d(1, 1, 3), max_side=0).__class__ is nn.Conv2d


def test_traced_graph_holds_native_convolutions() -> None:
    """Export (TorchScript tracing, ONNX) sees the convolution every backend knows, not unfold/fold."""
    net = route_small_convs_through_gemm(nn.Sequential(nn.Conv2d(2, 4, 4, 2, 1), nn.ConvTranspose2d(4, 2, 4, 2, 1)),
                                         max_side=16)
    x = torch.randn(1, 2, 8, 8)
    traced = torch.jit.trace(net, (x,))
    graph = str(traced.inlined_graph)
    assert "aten::_convolution" in graph and "im2col" not in graph and "col2im" not in graph
    torch.testing.assert_close(traced(x), net(x), rtol=1e-5, atol=1e-5)


def test_pix2pix_training_step_equals_native_convolutions(tmp_path) -> None:
    """A whole pix2pix step (128 px U-Net: inner layers of 1-16 px) with and without the routing."""
    from models import create_model
    from options.train_options import TrainOptions

    def step(max_side: int) -> tuple[dict, dict]:
        opt = TrainOptions().parse(
            ["--model", "pix2pix", "--dataroot", str(tmp_path), "--name", "gemm", "--checkpoints_dir", str(tmp_path),
             "--netG", "unet_128", "--ngf", "8", "--ndf", "8", "--crop_size", "128", "--load_size", "128",
             "--gemm_conv_max_side", str(max_side), "--seed", "0"], save=False)
        torch.manual_seed(0)
        model = create_model(opt)
        model.setup()
        generator = torch.Generator().manual_seed(1)
        model.set_input({"A": torch.rand(1, 1, 128, 128, generator=generator) * 2 - 1,  # infrared
                         "B": torch.rand(1, 3, 128, 128, generator=generator) * 2 - 1,  # visible
                         "A_paths": ["a.png"], "B_paths": ["b.png"]})
        model.optimize_parameters()
        return model.get_current_losses(), model.bare_networks()["G"].state_dict()

    routed_losses, routed_weights = step(16)
    native_losses, native_weights = step(0)
    for name, value in native_losses.items():
        assert routed_losses[name] == pytest.approx(value, rel=1e-4, abs=1e-5), name
    # Adam's first step moves each weight by about --lr (2e-4) whatever its gradient's size, so a gradient
    # within float rounding of zero may move differently: weights agree to a fraction of one step.
    for key, value in native_weights.items():
        torch.testing.assert_close(routed_weights[key], value, rtol=0, atol=1e-4)
