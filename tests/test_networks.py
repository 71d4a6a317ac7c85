"""Architectures: output shapes, parameter counts and upstream-compatible key layouts."""
from __future__ import annotations

import pytest
import torch

from models.networks import count_parameters, define_D, define_G
from models.networks.padding import crop_to, pad_to_multiple
from upstream_layout import basic_discriminator_keys, unet_keys
from util.errors import UserError


def layout(net: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in net.state_dict().items()}


@pytest.mark.parametrize(("net_g", "num_downs", "count"), [("unet_256", 8, 82), ("unet_128", 7, 70)])
def test_unet_key_layout_equals_upstream(net_g, num_downs, count):
    expected = unet_keys(num_downs, 3, 1)
    assert len(expected) == count
    assert layout(define_G(3, 1, 64, net_g, "batch")) == expected


def test_basic_discriminator_key_layout_equals_upstream():
    expected = basic_discriminator_keys(4)
    assert len(expected) == 22
    assert layout(define_D(4, 64, "basic", norm="batch")) == expected


def test_key_order_matches_upstream_listing():
    keys = list(define_G(3, 3, 64, "unet_256", "batch").state_dict())
    assert keys[:4] == ["model.model.0.weight", "model.model.1.model.1.weight", "model.model.1.model.2.weight",
                        "model.model.1.model.2.bias"]
    assert keys[-2:] == ["model.model.3.weight", "model.model.3.bias"]


@pytest.mark.parametrize(
    ("builder", "params"),
    [  # upstream's printed parameter counts
        (lambda: define_G(3, 3, 64, "unet_256", "batch"), 54_413_955),
        (lambda: define_G(3, 1, 64, "unet_256", "batch"), 54_409_857),
        (lambda: define_G(3, 3, 64, "unet_256", "instance"), 54_409_603),
        (lambda: define_G(3, 3, 64, "unet_128", "batch"), 41_828_995),
        (lambda: define_G(3, 3, 64, "resnet_9blocks", "instance"), 11_378_179),
        (lambda: define_G(3, 3, 64, "resnet_6blocks", "instance"), 7_837_699),
        (lambda: define_D(6, 64, "basic", norm="batch"), 2_768_705),
        (lambda: define_D(3, 64, "basic", norm="instance"), 2_764_737),
        (lambda: define_D(6, 64, "n_layers", n_layers_D=5, norm="batch"), 11_159_361),
        (lambda: define_D(6, 64, "pixel", norm="batch"), 9_024),
    ],
)
def test_parameter_counts_match_upstream(builder, params):
    assert count_parameters(builder()) == params


@pytest.mark.parametrize(("net_g", "size"), [("unet_128", 128), ("resnet_6blocks", 36), ("resnet_9blocks", 20)])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_generator_shapes_and_range(net_g, size, norm):
    net = define_G(3, 1, 8, net_g, norm, use_dropout=True)
    out = net(torch.randn(2, 3, size, size))
    assert out.shape == (2, 1, size, size)
    assert out.abs().max() <= 1.0  # tanh output


@pytest.mark.parametrize(("net_d", "size", "out_size"), [("basic", 64, 6), ("n_layers", 64, 14), ("pixel", 16, 16)])
def test_discriminator_output_shapes(net_d, size, out_size):
    net = define_D(4, 8, net_d, n_layers_D=2, norm="instance")
    assert net(torch.randn(2, 4, size, size)).shape == (2, 1, out_size, out_size)


@pytest.mark.parametrize("init_type", ["normal", "xavier", "kaiming", "orthogonal"])
def test_init_types(init_type):
    net = define_G(1, 1, 8, "resnet_6blocks", "batch", init_type=init_type, init_gain=0.02)
    conv = net.model[1]
    assert conv.weight.std() > 0
    if init_type == "normal":
        assert abs(conv.weight.std().item() - 0.02) < 0.005


def test_unknown_architecture_fails_clearly():
    with pytest.raises(UserError, match="unknown --netG 'unet_512'; available: unet_256, unet_128"):
        define_G(3, 1, 64, "unet_512")
    with pytest.raises(UserError, match="unknown --netD"):
        define_D(4, 64, "huge")


@pytest.mark.parametrize(("height", "width"), [(37, 50), (5, 3), (64, 64)])
def test_pad_to_multiple_and_crop_back(height, width):
    x = torch.randn(1, 2, height, width)
    padded, size = pad_to_multiple(x, 16)
    assert padded.shape[-2] % 16 == 0 and padded.shape[-1] % 16 == 0
    assert torch.equal(crop_to(padded, size), x)
