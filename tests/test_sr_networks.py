"""Super-resolution networks, checkpoint layouts, tiling, EMA and the SR losses.

The reference forwards and checkpoint layouts below are written from the published key schemes
and block definitions (IRSRGAN's ``model.py``, BasicSR's ``RRDBNet``, the original ESRGAN
names), independently of the module code, so loading and wiring are checked end to end.
"""
from __future__ import annotations

import re
import urllib.error

import pytest
import torch
import torch.nn.functional as F
import torchvision

from models.ema import ModelEMA
from models.losses.perceptual_loss import PerceptualLoss
from models.losses.relativistic_gan_loss import ragan_discriminator_losses, ragan_generator_loss
from models.networks import count_parameters, define_D, define_sr_G
from models.networks.crdb import CRDB
from models.networks.sr_weight_mapping import load_generator_weights, read_generator_state
from models.tiling import tiled_upscale, upscale
from util.errors import UserError

Shape = tuple[int, ...]
LUMA = torch.tensor([0.299, 0.587, 0.114])


# ------------------------------------------------------------------------------------ layouts
def _conv(keys: dict[str, Shape], name: str, cin: int, cout: int, kernel: int = 3) -> None:
    keys[f"{name}.weight"] = (cout, cin, kernel, kernel)
    keys[f"{name}.bias"] = (cout,)


def irsrgan_keys(in_nc: int = 3, out_nc: int = 3, nf: int = 64, nb: int = 23, gc: int = 32) -> dict[str, Shape]:
    """IRSRGAN's ``model.Generator`` state dict (x4): initial, residuals.{i}.rrdb.{j}.blocks.{k}.cnn,
    residuals.{i}.conv (1x1 over 4 nf), conv, upsamples.{n}.conv, final.0, final.2."""
    keys: dict[str, Shape] = {}
    _conv(keys, "initial", in_nc, nf)
    for i in range(nb):
        for j in range(3):
            for k in range(5):
                _conv(keys, f"residuals.{i}.rrdb.{j}.blocks.{k}.cnn", nf + k * gc, gc if k < 4 else nf)
        _conv(keys, f"residuals.{i}.conv", 4 * nf, nf, kernel=1)
    _conv(keys, "conv", nf, nf)
    for n in range(2):
        _conv(keys, f"upsamples.{n}.conv", nf, nf)
    _conv(keys, "final.0", nf, nf)
    _conv(keys, "final.2", nf, out_nc)
    return keys


def basicsr_keys(in_nc: int = 3, out_nc: int = 3, nf: int = 64, nb: int = 23, gc: int = 32,
                 scale: int = 4) -> dict[str, Shape]:
    """BasicSR's ``RRDBNet``: conv_first (x4 input channels at scale 2, pixel-unshuffle),
    body.{i}.rdb{1..3}.conv{1..5}, conv_body, conv_up1/2, conv_hr, conv_last."""
    keys: dict[str, Shape] = {}
    _conv(keys, "conv_first", in_nc * (4 if scale == 2 else 1), nf)
    for i in range(nb):
        for j in range(1, 4):
            for k in range(5):
                _conv(keys, f"body.{i}.rdb{j}.conv{k + 1}", nf + k * gc, gc if k < 4 else nf)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        _conv(keys, name, nf, nf)
    _conv(keys, "conv_last", nf, out_nc)
    return keys


def esrgan_original_name(basicsr_key: str) -> str:
    """The original ESRGAN repository's names (BasicSR's convert_models.py, reversed)."""
    key = re.sub(r"^body\.(\d+)\.rdb(\d)\.", r"RRDB_trunk.\1.RDB\2.", basicsr_key)
    for ours, theirs in (("conv_body.", "trunk_conv."), ("conv_up1.", "upconv1."), ("conv_up2.", "upconv2."),
                         ("conv_hr.", "HRconv.")):
        if key.startswith(ours):
            key = theirs + key[len(ours):]
    return key


def random_weights(keys: dict[str, Shape], seed: int = 0, std: float = 0.1) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {key: torch.randn(shape, generator=generator) * std for key, shape in keys.items()}


# --------------------------------------------------------------------- reference forwards
def _apply(sd: dict[str, torch.Tensor], name: str, x: torch.Tensor) -> torch.Tensor:
    weight = sd[f"{name}.weight"]
    return F.conv2d(x, weight, sd[f"{name}.bias"], padding=weight.shape[-1] // 2)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def reference_dense_block(sd: dict[str, torch.Tensor], conv_names: list[str], x: torch.Tensor) -> torch.Tensor:
    features = x
    for name in conv_names[:4]:
        features = torch.cat((features, _lrelu(_apply(sd, name, features))), 1)
    return 0.2 * _apply(sd, conv_names[4], features) + x


def _upsample_tail(sd: dict[str, torch.Tensor], features: torch.Tensor, up_names: list[str], hr_name: str,
                   last_name: str) -> torch.Tensor:
    for name in up_names:
        features = _lrelu(_apply(sd, name, F.interpolate(features, scale_factor=2, mode="nearest")))
    return _apply(sd, last_name, _lrelu(_apply(sd, hr_name, features)))


def reference_irsrgan(sd: dict[str, torch.Tensor], x: torch.Tensor, nb: int) -> torch.Tensor:
    """IRSRGAN's generator as its code runs it (D1(x) evaluated twice, as there)."""
    initial = _apply(sd, "initial", x)
    h = initial
    for i in range(nb):
        def dense(j, t, i=i):
            return reference_dense_block(sd, [f"residuals.{i}.rrdb.{j}.blocks.{k}.cnn" for k in range(5)], t)
        main = 0.2 * dense(2, dense(1, dense(0, h)))
        t1 = 0.2 * dense(0, h)
        t2 = 0.2 * dense(1, t1)
        t3 = 0.2 * dense(2, t2)
        h = _apply(sd, f"residuals.{i}.conv", torch.cat((main, t1, t2, t3), 1)) + h
    h = _apply(sd, "conv", h) + initial
    return _upsample_tail(sd, h, ["upsamples.0.conv", "upsamples.1.conv"], "final.0", "final.2")


def reference_basicsr(sd: dict[str, torch.Tensor], x: torch.Tensor, nb: int, scale: int) -> torch.Tensor:
    if scale == 2:
        x = F.pixel_unshuffle(x, 2)
    feat = _apply(sd, "conv_first", x)
    h = feat
    for i in range(nb):
        block_input = h
        for j in range(1, 4):
            h = reference_dense_block(sd, [f"body.{i}.rdb{j}.conv{k}" for k in range(1, 6)], h)
        h = 0.2 * h + block_input
    h = feat + _apply(sd, "conv_body", h)
    return _upsample_tail(sd, h, ["conv_up1", "conv_up2"], "conv_hr", "conv_last")


def luma(images: torch.Tensor) -> torch.Tensor:
    return (images * LUMA.view(1, 3, 1, 1)).sum(1, keepdim=True)


# ------------------------------------------------------------------------ parameter counts
@pytest.mark.parametrize(
    ("builder", "expected"),
    [  # counts measured on IRSRGAN's and BasicSR's own modules (facts file 1.2, 1.3, 2.1)
        (lambda: CRDB(64, 32), 735_872),
        (lambda: define_sr_G(3, 3, 64, 23, 32, 4, "crdb"), 17_076_291),
        (lambda: define_sr_G(1, 1, 64, 23, 32, 4, "crdb"), 17_073_985),
        (lambda: define_sr_G(3, 3, 64, 23, 32, 4, "rrdb"), 16_697_987),
        (lambda: define_sr_G(1, 1, 64, 23, 32, 4, "rrdb"), 16_695_681),
        (lambda: define_D(3, 64, "vgg", norm="batch"), 14_499_401),
    ],
)
def test_parameter_counts_match_the_published_networks(builder, expected):
    assert count_parameters(builder()) == expected


def test_crdb_count_from_its_layer_list():
    # 3 dense blocks of 5 convs (in 64 + 32k, out 32 or 64, 3x3, bias) and a 1x1 conv 256 -> 64.
    dense = sum((64 + 32 * k) * (32 if k < 4 else 64) * 9 + (32 if k < 4 else 64) for k in range(5))
    assert count_parameters(CRDB(64, 32)) == 3 * dense + 256 * 64 + 64


@pytest.mark.parametrize("net_g", ["crdb", "rrdb"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_generator_output_shapes(net_g, scale):
    net = define_sr_G(1, 1, 8, 1, 4, scale, net_g)
    for height, width in ((6, 10), (5, 7)):
        out = upscale(net, torch.randn(2, 1, height, width))
        assert out.shape == (2, 1, height * scale, width * scale)


def test_crdb_block_keeps_shape_and_is_near_identity_at_init():
    block = CRDB(16, 8)
    x = torch.randn(2, 16, 9, 11)
    y = block(x)
    assert y.shape == x.shape
    assert 0 < (y - x).abs().mean() < 0.1 * x.abs().mean()  # x0.1-scaled residual branches


# -------------------------------------------------------------------------- weight layouts
def test_irsrgan_release_layout_has_748_keys_and_maps_onto_crdbnet(tmp_path):
    keys = irsrgan_keys()
    assert len(keys) == 748
    torch.save({"state_dict": {key: torch.zeros(shape) for key, shape in keys.items()}}, tmp_path / "irsrgan.pth.tar")
    mapped, layout = read_generator_state(tmp_path / "irsrgan.pth.tar")
    expected = define_sr_G(3, 3, 64, 23, 32, 4, "crdb").state_dict()
    assert layout == "irsrgan" and set(mapped) == set(expected)
    assert all(mapped[key].shape == value.shape for key, value in expected.items())


def on_project_range(reference, x: torch.Tensor) -> torch.Tensor:
    """What a [0, 1]-trained reference network gives for the project's [-1, 1] image ``x``."""
    return reference((x + 1) / 2) * 2 - 1


def test_irsrgan_checkpoint_reproduces_its_generator(tmp_path):
    sd = random_weights(irsrgan_keys(3, 3, nf=8, nb=2, gc=4))
    # The seed's training checkpoint: state_dict plus an AveragedModel "EMA" with module. keys.
    ema = {f"module.{key}": value + 1 for key, value in sd.items()} | {"n_averaged": torch.tensor(5)}
    torch.save({"epoch": 3, "best_psnr": 30.0, "state_dict": sd, "ema_state_dict": ema}, tmp_path / "g.pth.tar")
    x = torch.rand(1, 3, 7, 9) * 2 - 1
    expected = on_project_range(lambda image: reference_irsrgan(sd, image, nb=2), x)

    colour = define_sr_G(3, 3, 8, 2, 4, 4, "crdb")
    assert load_generator_weights(colour, tmp_path / "g.pth.tar") == "irsrgan"
    with torch.no_grad():
        torch.testing.assert_close(colour(x), expected, atol=1e-5, rtol=1e-5)

    # The same 3-channel weights in a 1-channel generator: grey in, luma of the colour output out.
    grey = define_sr_G(1, 1, 8, 2, 4, 4, "crdb")
    load_generator_weights(grey, tmp_path / "g.pth.tar")
    g = x[:, :1]
    with torch.no_grad():
        torch.testing.assert_close(
            grey(g), on_project_range(lambda image: luma(reference_irsrgan(sd, image.expand(-1, 3, -1, -1), nb=2)), g),
            atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("scale", [4, 2])
def test_basicsr_checkpoint_reproduces_rrdbnet(tmp_path, scale):
    keys = basicsr_keys(3, 3, nf=8, nb=2, gc=4, scale=scale)
    params, params_ema = random_weights(keys, seed=1), random_weights(keys, seed=2)
    torch.save({"params": params, "params_ema": params_ema}, tmp_path / "net_g.pth")
    x = torch.rand(1, 3, 6, 8) * 2 - 1

    net = define_sr_G(3, 3, 8, 2, 4, scale, "rrdb")
    assert load_generator_weights(net, tmp_path / "net_g.pth") == "ours"
    with torch.no_grad():  # params_ema is preferred, as Real-ESRGAN's inference does
        expected = on_project_range(lambda image: reference_basicsr(params_ema, image, 2, scale), x)
        torch.testing.assert_close(net(x), expected,
                                   atol=1e-5, rtol=1e-5)

    grey = define_sr_G(1, 1, 8, 2, 4, scale, "rrdb")
    load_generator_weights(grey, tmp_path / "net_g.pth")
    g = x[:, :1]
    with torch.no_grad():
        torch.testing.assert_close(
            grey(g), on_project_range(
                lambda image: luma(reference_basicsr(params_ema, image.expand(-1, 3, -1, -1), 2, scale)), g),
            atol=1e-5, rtol=1e-5)

    torch.save({"params": params}, tmp_path / "params_only.pth")
    read, _ = read_generator_state(tmp_path / "params_only.pth")
    assert torch.equal(read["conv_first.weight"], params["conv_first.weight"])


def test_original_esrgan_names_load(tmp_path):
    sd = random_weights(basicsr_keys(3, 3, nf=8, nb=1, gc=4), seed=3)
    torch.save({esrgan_original_name(key): value for key, value in sd.items()}, tmp_path / "RRDB_ESRGAN_x4.pth")
    net = define_sr_G(3, 3, 8, 1, 4, 4, "rrdb")
    assert load_generator_weights(net, tmp_path / "RRDB_ESRGAN_x4.pth") == "esrgan"
    assert all(torch.equal(net.state_dict()[key], value) for key, value in sd.items())
    assert net.value_range.tolist() == [0.0, 1.0] and net.bicubic_residual.item() == 0.0


def test_wrong_checkpoints_fail_clearly(tmp_path):
    torch.save(random_weights(basicsr_keys(1, 1, nf=8, nb=2, gc=4)), tmp_path / "rrdb.pth")
    with pytest.raises(UserError, match="is an RRDB \\(ESRGAN\\) generator: use --netG rrdb"):
        load_generator_weights(define_sr_G(1, 1, 8, 2, 4, 4, "crdb"), tmp_path / "rrdb.pth")
    with pytest.raises(UserError, match="2 blocks\\) does not fit .*--nb/--ngf/--gc/--scale"):
        load_generator_weights(define_sr_G(1, 1, 8, 3, 4, 4, "rrdb"), tmp_path / "rrdb.pth")
    torch.save({"model.0.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(UserError, match="not an RRDB/CRDB generator checkpoint of a known layout"):
        load_generator_weights(define_sr_G(1, 1, 8, 2, 4, 4, "rrdb"), tmp_path / "other.pth")
    torch.save({"optimizer": {"lr": 1.0}}, tmp_path / "no_weights.pth")
    with pytest.raises(UserError, match="holds no generator state dict"):
        read_generator_state(tmp_path / "no_weights.pth")


# ----------------------------------------------------------------------------- discriminator
@pytest.mark.parametrize("size", [(32, 32), (48, 80), (128, 128), (200, 136)])
def test_vgg_discriminator_accepts_any_patch_size(size):
    net = define_D(1, 8, "vgg", norm="batch")
    assert net(torch.randn(2, 1, *size)).shape == (2, 1)


def test_vgg_discriminator_is_the_fixed_size_original_at_128():
    net = define_D(3, 8, "vgg", norm="batch").eval()
    x = torch.randn(2, 3, 128, 128)
    features = net.features(x)
    assert features.shape[-2:] == (4, 4)  # the original's flatten size; the pool is then the identity
    torch.testing.assert_close(net(x), net.classifier(features.flatten(1)))
    with pytest.raises(ValueError, match="at least 32x32"):
        net(torch.randn(1, 3, 16, 64))


# ---------------------------------------------------------------------------------- tiling
def unit_gain_generator(net_g: str, scale: int) -> torch.nn.Module:
    """A one-block generator whose convs have unit gain, so distant pixels visibly matter
    (at ESRGAN's x0.1 initialisation their influence is below float precision)."""
    torch.manual_seed(0)
    net = define_sr_G(1, 1, 4, 1, 4, scale, net_g).eval()
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, 0.0, (module.weight[0].numel()) ** -0.5)
    return net


@pytest.mark.parametrize(("net_g", "scale", "tile", "pad", "size"),
                         [("crdb", 4, 16, 20, (61, 45)), ("rrdb", 3, 16, 20, (61, 45)), ("crdb", 2, 48, 40, (130, 70))])
def test_tiled_equals_untiled_when_the_margin_covers_the_receptive_field(net_g, scale, tile, pad, size):
    # One block: receptive field radius below `pad` LR pixels (x2 runs its trunk at half resolution),
    # and images larger than a tile with its margins, so tiles really see only part of the image.
    net = unit_gain_generator(net_g, scale)
    image = torch.rand(1, 1, *size) * 2 - 1
    seen: list[tuple[int, int]] = []
    net.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape[-2:])))
    with torch.no_grad():
        whole = upscale(net, image)
        seen.clear()
        tiled = tiled_upscale(net, image, tile=tile, tile_pad=pad)
    assert tiled.shape == whole.shape == (1, 1, size[0] * scale, size[1] * scale)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)
    assert whole.std() > 0.1
    assert len(seen) == -(-size[0] // tile) * -(-size[1] // tile)
    assert max(max(shape) for shape in seen) <= tile + 2 * pad < max(size)  # bounded tile inputs


def test_small_tile_margin_only_changes_pixels_near_tile_borders():
    net = unit_gain_generator("crdb", 4)
    image = torch.rand(1, 1, 40, 40) * 2 - 1
    with torch.no_grad():
        difference = (tiled_upscale(net, image, tile=20, tile_pad=4) - upscale(net, image)).abs()[0, 0]
    # Tile border at LR 20 = HR 80; context needed ~20 LR px, the margin gives 4 + distance to the border.
    far = torch.ones_like(difference, dtype=torch.bool)
    far[80 - 4 * 17:80 + 4 * 17, :] = False
    far[:, 80 - 4 * 17:80 + 4 * 17] = False
    assert difference[far].max() < 1e-5
    assert difference[~far].max() > 1e-3  # the seam region does differ: the test can fail


# ------------------------------------------------------------------------------------- EMA
def test_ema_formula_with_warm_up_and_copied_buffers():
    model = torch.nn.BatchNorm1d(3)
    ema = ModelEMA(model, decay=0.8)
    expected = model.weight.detach().clone()
    for step in range(40):
        with torch.no_grad():
            model.weight.add_(0.5)
            model.running_mean.add_(1.0)
        decay = min(0.8, (1 + step) / (10 + step))
        expected = decay * expected + (1 - decay) * model.weight.detach()
        ema.update(model)
    assert ema.current_decay() == 0.8
    torch.testing.assert_close(ema.average.weight, expected)
    assert torch.equal(ema.average.running_mean, model.running_mean)
    assert not ema.average.weight.requires_grad
    assert not torch.equal(ema.average.weight, model.weight)  # the average lags behind the weights


# ---------------------------------------------------------------------------------- losses
def test_relativistic_losses_match_the_formulas():
    real, fake = torch.tensor([[1.0], [2.5], [-0.5]]), torch.tensor([[0.2], [-1.0], [0.7]])
    bce = F.binary_cross_entropy_with_logits
    expected_g = 0.5 * (bce(real - fake.mean(), torch.zeros(3, 1)) + bce(fake - real.mean(), torch.ones(3, 1)))
    torch.testing.assert_close(ragan_generator_loss(real, fake), expected_g)
    real_half, fake_half = ragan_discriminator_losses(real, fake)
    torch.testing.assert_close(real_half, 0.5 * bce(real - fake.mean(), torch.ones(3, 1)))
    torch.testing.assert_close(fake_half, 0.5 * bce(fake - real.mean(), torch.zeros(3, 1)))


@pytest.mark.parametrize("reference", ["full", "detached"])
def test_relativistic_reference_gradient(reference):
    real = torch.tensor([1.0, 2.5, -0.5], requires_grad=True)
    fake = torch.tensor([0.2, -1.0, 0.7], requires_grad=True)
    sum(ragan_discriminator_losses(real, fake, reference)).backward()
    # d/dr of the real half only: 0.5 * (sigmoid(r - mean f) - 1) / 3 per element.
    own = 0.5 * (torch.sigmoid(real.detach() - fake.detach().mean()) - 1) / 3
    through_reference = -0.5 * torch.sigmoid(fake.detach() - real.detach().mean()).sum() / 9
    expected = own + (through_reference if reference == "full" else 0.0)
    torch.testing.assert_close(real.grad, expected)


def _torchvision_vgg19_features(last: int = 34) -> torch.nn.Sequential:
    from torchvision.models.vgg import cfgs, make_layers

    return make_layers(cfgs["E"])[: last + 1]


def test_perceptual_loss_is_vgg19_conv5_4_before_relu_on_imagenet_normalised_rgb(tmp_path):
    torch.manual_seed(0)
    reference = _torchvision_vgg19_features()
    assert isinstance(reference[-1], torch.nn.Conv2d) and reference[-1].in_channels == 512
    state = {f"features.{key}": value for key, value in reference.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a full torchvision file also has the classifier
    torch.save(state, tmp_path / "vgg19.pth")
    loss = PerceptualLoss(str(tmp_path / "vgg19.pth"))
    grey_sr, grey_hr = torch.rand(2, 1, 32, 32) * 2 - 1, torch.rand(2, 1, 32, 32) * 2 - 1

    def phi(images):
        rgb = ((images + 1) / 2).repeat(1, 3, 1, 1)
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        return reference((rgb - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))

    with torch.no_grad():
        torch.testing.assert_close(loss(grey_sr, grey_hr), F.l1_loss(phi(grey_sr), phi(grey_hr)))
    assert loss(grey_hr, grey_hr).item() == 0.0
    assert not any(parameter.requires_grad for parameter in loss.parameters())
    # The same images as 3 identical channels give the same loss.
    torch.testing.assert_close(loss(grey_sr.repeat(1, 3, 1, 1), grey_hr.repeat(1, 3, 1, 1)), loss(grey_sr, grey_hr))


def test_perceptual_loss_weight_sources(tmp_path, monkeypatch):
    reference = _torchvision_vgg19_features()
    served = {f"features.{key}": value for key, value in reference.state_dict().items()}
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", lambda url, *a, **k: served)
    loss = PerceptualLoss("torchvision")
    assert torch.equal(loss.features[34].weight, served["features.34.weight"])

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    with pytest.raises(UserError, match="ImageNet VGG19 weights .* pass --vgg_weights PATH"):
        PerceptualLoss("torchvision")
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "partial.pth")
    with pytest.raises(UserError, match="is not a VGG19 state dict: missing features.0.bias"):
        PerceptualLoss(str(tmp_path / "partial.pth"))
    with pytest.raises(UserError, match="does not exist"):
        PerceptualLoss(str(tmp_path / "absent.pth"))
