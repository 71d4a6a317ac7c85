"""DoubleU-Net and its blocks: SE, ASPP, VGG19 encoder, edge sharpening, denoiser, filters."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn as nn
import torchvision

from models.networks import count_parameters, define_G, initialise
from models.networks.aspp import ASPP
from models.networks.denoiser import ResidualDenoiser
from models.networks.doubleunet import FAITHFUL, IMPROVED, DoubleUNet
from models.networks.edge_sharpening import EdgeSharpening
from models.networks.filters import filter_channels, gaussian_kernel, laplacian_kernel, sobel_kernels
from models.networks.padding import crop_to, pad_to_multiple
from models.networks.se import SqueezeExcitation
from models.networks.vgg_encoder import IMAGENET_MEAN, IMAGENET_STD, VGG19Encoder
from util.errors import UserError


def test_filters_see_no_edges_in_flat_images_and_find_a_step():
    flat = torch.full((1, 2, 9, 9), 0.3)
    for kernels in (laplacian_kernel(), sobel_kernels()):
        assert filter_channels(flat, kernels).abs().max() == 0  # borders included (reflection)
    blurred = filter_channels(flat, gaussian_kernel(1.0))
    assert torch.allclose(blurred, flat)
    step = torch.zeros(1, 1, 6, 6)
    step[..., 3:] = 1.0
    sobel = filter_channels(step, sobel_kernels())
    assert sobel.shape == (1, 2, 6, 6)
    assert sobel[0, 0, :, 2:4].eq(4).all() and sobel[0, 0, :, :2].eq(0).all() and sobel[0, 1].eq(0).all()


def test_squeeze_excitation_scales_channels_by_their_gate():
    se = SqueezeExcitation(16, ratio=8)
    assert count_parameters(se) == 16 * 2 + 2 + 2 * 16 + 16  # two FC layers with bias
    x = torch.randn(2, 16, 5, 7)
    expected = x * torch.sigmoid(se.excitation[2](torch.relu(se.excitation[0](x.mean(dim=(2, 3))))))[..., None, None]
    assert torch.allclose(se(x), expected)
    nn.init.zeros_(se.excitation[2].weight)
    nn.init.zeros_(se.excitation[2].bias)
    assert torch.allclose(se(x), x * 0.5)


@pytest.mark.parametrize(("pooling", "params"), [("grid2", 971_520), ("global", 971_456)])
def test_aspp_shapes_and_parameter_counts(pooling, params):
    aspp = ASPP(512, 64, norm_layer=nn.BatchNorm2d, image_pooling=pooling)
    assert count_parameters(aspp) == params  # grid2: DoubleU-Net's PyTorch port
    out = aspp(torch.randn(1, 512, 8, 6))  # batch of one: global pooling must not use batch norm
    assert out.shape == (1, 64, 8, 6)


def test_aspp_image_pooling_branch_is_constant_over_the_image_when_global():
    aspp = ASPP(4, 3, rates=(2,), image_pooling="global").eval()
    x = torch.randn(1, 4, 6, 6)
    pooled = aspp.pooling(x)
    assert pooled.shape == (1, 3, 1, 1)
    assert torch.allclose(pooled[0, :, 0, 0], torch.relu(aspp.pooling[1](x.mean(dim=(2, 3), keepdim=True)))[0, :, 0, 0])


def test_edge_sharpening_keeps_shape_and_adds_only_high_frequencies():
    block = EdgeSharpening(4)
    assert count_parameters(block) == 2 * (4 * 4 * 9 + 4)
    for module in block.detail:
        if isinstance(module, nn.Conv2d):
            nn.init.zeros_(module.bias)
    flat = torch.full((1, 4, 8, 8), 0.7)
    assert torch.equal(block(flat), flat)  # no edges, nothing added
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    out = block(x)
    assert out.shape == x.shape and not torch.allclose(out, x)
    out.sum().backward()
    assert block.detail[0].weight.grad.abs().sum() > 0


def test_denoiser_is_residual_and_bounded():
    net = ResidualDenoiser(1, features=8, depth=4)
    assert count_parameters(net) == (1 * 8 * 9 + 8) + 2 * (8 * 8 * 9 + 2 * 8) + (8 * 1 * 9 + 1)
    x = torch.rand(2, 1, 12, 10) * 1.8 - 0.9
    out = net(x)
    assert out.shape == x.shape and out.abs().max() < 1
    initialise(net)  # generic N(0, 0.02), then the last layer is zeroed
    assert net.noise[0].weight.std() > 0 and net.noise[-1].weight.abs().max() == 0
    assert torch.allclose(net(x), x, atol=1e-6)  # zero noise estimate: the identity


def test_vgg_encoder_shapes_count_and_he_initialisation():
    encoder = VGG19Encoder(3)
    assert count_parameters(encoder) == 20_024_384  # VGG19's 16 convolutions
    encoder.reset_own_parameters()
    first = encoder.convolutions()[0].weight
    assert abs(first.std().item() - (2 / (64 * 9)) ** 0.5) < 0.01
    features = encoder(torch.randn(1, 3, 32, 48))
    assert [tuple(f.shape[1:]) for f in features] == [(64, 32, 48), (128, 16, 24), (256, 8, 12), (512, 4, 6),
                                                       (512, 2, 3)]
    residual = VGG19Encoder(1, nn.BatchNorm2d, residual=True, width=0.25)
    assert residual(torch.randn(2, 1, 16, 16))[-1].shape == (2, 128, 1, 1)


def test_vgg_encoder_loads_torchvision_weights_and_imagenet_normalisation(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.vgg19().features.eval()  # random weights: nothing is downloaded
    path = tmp_path / "vgg19.pth"
    torch.save({f"features.{key}": value for key, value in reference.state_dict().items()}, path)
    encoder = VGG19Encoder(3)
    encoder.load_vgg19_weights(path)
    x = torch.rand(1, 3, 32, 32) * 2 - 1  # model range
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    normalised = ((x + 1) / 2 - mean) / std
    with torch.no_grad():
        features = encoder(x)
        assert torch.allclose(features[1], reference[:9](normalised), atol=1e-5)
        assert torch.allclose(features[4], reference[:36](normalised), atol=1e-4)
    grey = VGG19Encoder(1)
    grey.load_vgg19_weights(path)
    assert torch.allclose(grey.convolutions()[0].weight, reference[0].weight.sum(dim=1, keepdim=True))


def test_vgg_encoder_refuses_files_that_are_not_vgg19(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, path)
    with pytest.raises(UserError, match=r"not a VGG19 state dict: expected 16"):
        VGG19Encoder(3).load_vgg19_weights(path)
    with pytest.raises(UserError, match=r"does not exist"):
        VGG19Encoder(3).load_vgg19_weights(tmp_path / "missing.pth")


def test_faithful_doubleunet_has_the_published_parameter_count():
    net = define_G(3, 1, 64, "doubleunet", "batch")
    parts = {name: count_parameters(getattr(net, name))
             for name in ("encoder1", "aspp1", "decoder1", "encoder2", "aspp2", "decoder2")}
    assert parts == {"encoder1": 20_024_384, "aspp1": 971_520, "decoder1": 2_908_828, "encoder2": 1_195_516,
                     "aspp2": 496_384, "decoder2": 3_692_188}
    assert count_parameters(net) == 29_288_886  # the reference PyTorch port
    # The VGG19 encoder keeps its He initialisation after the generic N(0, 0.02).
    assert net.encoder1.convolutions()[0].weight.std() > 0.05


def test_doubleunet_generator_output_range_gradients_and_any_size():
    torch.manual_seed(0)
    net = define_G(3, 1, 16, "doubleunet", "batch")
    assert net.size_multiple == 16
    x = torch.randn(2, 3, 40, 56) * 3
    padded, size = pad_to_multiple(x, net.size_multiple)
    output = net(padded, with_mask=True)
    image = crop_to(output.image, size)
    assert image.shape == (2, 1, 40, 56) and output.mask.shape == (2, 1, 48, 64)
    assert image.min() >= -1 and image.max() <= 1  # tanh: the target's range
    assert output.mask.min() >= 0 and output.mask.max() <= 1
    (image - torch.rand_like(image)).abs().mean().backward()
    for name in ("encoder1.groups.0.body.0.weight", "output1.weight", "encoder2.blocks.0.0.weight", "output2.weight"):
        grad = dict(net.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name  # output 2 depends on output 1's mask


def test_improved_doubleunet_starts_as_the_identity_on_its_coarse_input():
    net = initialise(DoubleUNet(4, 1, nn.BatchNorm2d, replace(IMPROVED, width=0.125)))
    assert isinstance(net.sharpen, EdgeSharpening) and net.dropout.p == 0.6
    assert net.aspp1.pooling[0].output_size == 1 and net.encoder1.groups[0].shortcut is not None
    x = torch.rand(1, 4, 32, 32) * 1.6 - 0.8
    assert torch.allclose(net(x), x[:, :1], atol=1e-5)  # output 2's layer starts at zero
    net.output2.bias.data.fill_(0.5)
    assert torch.allclose(net(x), torch.tanh(torch.atanh(x[:, :1]) + 0.5), atol=1e-5)  # a residual before tanh
    assert count_parameters(DoubleUNet(3, 1, nn.BatchNorm2d, replace(FAITHFUL, width=0.125))) < count_parameters(
        DoubleUNet(3, 1, nn.BatchNorm2d, replace(IMPROVED, width=0.125)))
