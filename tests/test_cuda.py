"""The CUDA path: mixed precision, channels-last, torch.compile, determinism, tiled SR and
checkpoints moving between GPU and CPU. Marked ``cuda``; without a GPU each test is skipped
with the reason. ``bash scripts/gpu_check.sh OUT`` runs them, then the benchmark table.

Tolerances, stated once: a training step's first L1 loss (a forward pass of the generator on
the same weights and batch) under bf16 autocast is within BF16_TOLERANCE (relative) of fp32's,
and in the channels-last layout within LAYOUT_TOLERANCE of the contiguous one (both fp32, so the
difference is only the convolution algorithms cuDNN picks; TF32 is allowed, as by default).
Tiled super-resolution equals the whole-image result within TILE_TOLERANCE with TF32 off.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import train as train_script
from conftest import write_aligned_dataset
from data import create_dataset
from data.loader import create_eval_loader
from models import create_model
from options.test_options import TestOptions
from options.train_options import TrainOptions
from scripts import benchmark
from test_irsrgan import write_sr_dataset
from util.image_io import write_image

BF16_TOLERANCE = 2e-2
LAYOUT_TOLERANCE = 1e-3
TILE_TOLERANCE = 1e-5

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() "
                                                                       "is False); run scripts/gpu_check.sh on one")]

# Small networks (no dropout: its masks would differ between memory layouts) and the loss that
# depends on the generator's forward pass alone.
ARCHITECTURES = {
    "pix2pix": ["--model", "pix2pix", "--netG", "unet_128", "--ngf", "8", "--ndf", "8", "--no_dropout",
                "--crop_size", "128", "--load_size", "128"],
    "cascade3": ["--model", "cascade3", "--netG1", "unet_128", "--ngf", "8", "--ndf", "8", "--no_dropout",
                 "--stage2_width", "0.125", "--aspp_dropout", "0", "--denoise_features", "8", "--denoise_depth", "3",
                 "--crop_size", "128", "--load_size", "128"],
    "irsrnet": ["--model", "irsrnet", "--ngf", "16", "--nb", "1", "--gc", "8", "--crop_size", "64"],
}
FORWARD_LOSS = {"pix2pix": "G_L1", "cascade3": "G3_L1", "irsrnet": "G_L1"}
TRAIN = ["--device", "cuda", "--n_epochs", "1", "--n_epochs_decay", "0", "--num_threads", "0", "--batch_size", "1",
         "--print_freq", "1", "--display_id", "0", "--no_html", "--val_freq", "0"]


def tiny_model(model: str, *options: str):
    """A model for training on the GPU with the same initial weights for the same options."""
    opt = TrainOptions().parse([*ARCHITECTURES[model], "--device", "cuda", "--checkpoints_dir", "unused", *options],
                               save=False)
    torch.manual_seed(0)
    network_model = create_model(opt)
    network_model.setup()
    network_model.train()
    return network_model


def parameters(model) -> dict[str, torch.Tensor]:
    return {f"{name}.{key}": value.detach().clone() for name, net in model.bare_networks().items()
            for key, value in net.named_parameters()}


def train_steps(model, steps: int) -> list[dict[str, float]]:
    """Losses of ``steps`` training steps on one fixed random batch."""
    torch.manual_seed(1)
    batch = benchmark.random_batch(model.opt)
    losses = []
    for _ in range(steps):
        model.set_input(batch)
        model.optimize_parameters()
        losses.append(dict(model.get_current_losses()))
    return losses


def dataset_for(model: str, root: Path) -> Path:
    if model == "irsrnet":
        return write_sr_dataset(root, {"train": 3})
    return write_aligned_dataset(root, {"train": 3}, size=128)


def train(tmp_path: Path, model: str, name: str, *options: str) -> Path:
    """train.py (in this process) on tiny data; returns the experiment folder."""
    root = tmp_path / "data"
    if not root.exists():
        dataset_for(model, root)
    train_script.main(["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "checkpoints"), "--name", name,
                       *ARCHITECTURES[model], *TRAIN, *options])
    return tmp_path / "checkpoints" / name


def logged_losses(folder: Path) -> list[dict[str, float]]:
    lines = [line for line in (folder / "loss_log.txt").read_text().splitlines() if line.startswith("(epoch")]
    return [{name: float(value) for name, value in re.findall(r"(\w+): (\S+)", line.split(")", 1)[1])}
            for line in lines]


def test_fp16_grad_scaler_steps_and_skips_an_overflowed_step():
    model = tiny_model("pix2pix", "--amp", "fp16")
    scaler = model.precision.scaler

    def set_scale(scale: float) -> None:  # the way a resumed run restores it
        model.precision.load_state_dict({**scaler.state_dict(), "scale": scale})

    set_scale(2.0**10)  # below the default 2**16, which may overflow at the very first step
    before = parameters(model)
    train_steps(model, 1)
    after = parameters(model)
    assert all(torch.isfinite(value).all() for value in after.values())
    assert any(not torch.equal(before[key], after[key]) for key in before if key.startswith("G."))
    assert any(not torch.equal(before[key], after[key]) for key in before if key.startswith("D."))

    # A scale so large that the fp16 gradients overflow: both optimizer steps are skipped and the
    # scale is lowered at each of the two updates (discriminator, then generator).
    set_scale(2.0**120)
    train_steps(model, 1)
    skipped = parameters(model)
    assert all(torch.equal(after[key], skipped[key]) for key in after)
    assert scaler.get_scale() == 2.0**118


@pytest.mark.parametrize("model_name", list(ARCHITECTURES))
def test_bf16_and_channels_last_steps_are_finite_and_match_fp32(model_name):
    variants = {"fp32": [], "bf16": ["--amp", "bf16"], "channels_last": ["--channels_last"],
                "bf16+channels_last": ["--amp", "bf16", "--channels_last"]}
    losses = {variant: train_steps(tiny_model(model_name, *options), 2) for variant, options in variants.items()}
    for variant, steps in losses.items():
        assert all(math.isfinite(value) for step in steps for value in step.values()), (variant, steps)
    compared = FORWARD_LOSS[model_name]
    reference = losses["fp32"][0][compared]
    for variant, tolerance in (("channels_last", LAYOUT_TOLERANCE), ("bf16", BF16_TOLERANCE),
                               ("bf16+channels_last", BF16_TOLERANCE)):
        value = losses[variant][0][compared]
        assert abs(value - reference) <= tolerance * abs(reference), (variant, value, reference)


# cascade3 is left out: its bilinear upsampling, adaptive pooling and reflection padding have no
# deterministic CUDA backward, so PyTorch refuses them under --deterministic.
@pytest.mark.parametrize("model_name", ["pix2pix", "irsrnet"])
def test_deterministic_training_gives_identical_weights_twice(tmp_path, model_name):
    weights = []
    for name in ("first", "second"):
        folder = train(tmp_path, model_name, name, "--deterministic", "--max_dataset_size", "2")
        weights.append(torch.load(folder / "latest_net_G.pth", weights_only=True))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])


@pytest.mark.parametrize("height", [480, 512])
def test_tiled_sr_of_a_16bit_frame_equals_untiled(tmp_path, capsys, record_property, height):
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 65536, (height // 16 + 1, 640 // 16 + 1)).astype(np.float64)
    frame = np.kron(coarse, np.ones((16, 16)))[:height, :640] + rng.normal(0, 300, (height, 640))
    write_image(tmp_path / "frames" / "frame.png", frame.clip(0, 65535).astype(np.uint16))
    opt = TestOptions().parse(["--dataroot", str(tmp_path / "frames"), "--sr_input", "lr", "--checkpoints_dir",
                               str(tmp_path), "--name", "sr", "--device", "cuda", "--num_threads", "0", "--eval",
                               *ARCHITECTURES["irsrnet"]], save=False)
    torch.manual_seed(0)
    model = create_model(opt)
    model.save_checkpoint("latest", {})  # random weights, loaded by setup as test.py loads a checkpoint
    model.setup()
    model.eval()
    batch = next(iter(create_eval_loader(create_dataset(opt, opt.phase), opt, limit=1)))
    assert tuple(batch["LR"].shape) == (1, 1, height, 640)

    def super_resolve(tile: int) -> tuple[torch.Tensor, float]:
        model.opt.tile, model.opt.tile_pad = tile, 32  # 32 LR pixels cover this network's receptive field
        model.set_input(batch)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        model.test()
        torch.cuda.synchronize()
        return model.SR.float().clone(), torch.cuda.max_memory_allocated() / 2**20

    allow_tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # TF32 rounding would differ with the algorithm per tile size
    try:
        whole, whole_mb = super_resolve(0)
        tiled, tiled_mb = super_resolve(128)
    finally:
        torch.backends.cudnn.allow_tf32 = allow_tf32
    difference = (whole - tiled).abs().max().item()
    record_property("peak_mb_whole", round(whole_mb))
    record_property("peak_mb_tiled", round(tiled_mb))
    with capsys.disabled():
        print(f"\n[tiled SR] 16-bit 640x{height} frame -> {tuple(whole.shape[-2:])}: max |tiled - whole| "
              f"{difference:.2e}; peak GPU memory whole {whole_mb:.0f} MB, tiles of 128 {tiled_mb:.0f} MB")
    assert whole.shape[-2:] == (height * 4, 640 * 4) and torch.isfinite(whole).all()
    assert difference <= TILE_TOLERANCE


def test_checkpoint_saved_on_gpu_resumes_on_cpu_and_back(tmp_path):
    devices = ("cuda", "cpu", "cuda")  # epoch 1 on the GPU, epoch 2 resumed on the CPU, epoch 3 on the GPU
    for epoch, device in enumerate(devices, start=1):
        resume = ["--continue_train"] if epoch > 1 else []
        folder = train(tmp_path, "irsrnet", "moved", "--device", device, "--n_epochs", str(epoch),
                       "--max_dataset_size", "2", *resume)
    losses = logged_losses(folder)
    assert len(losses) == 2 * len(devices)  # two steps per epoch, each epoch on its device
    assert all(math.isfinite(value) for step in losses for value in step.values())
    state = torch.load(folder / "latest_state.pth", weights_only=True)
    assert state["progress"]["epoch"] == len(devices)
    assert all(torch.isfinite(value).all() for value in
               torch.load(folder / "latest_net_G_ema.pth", weights_only=True).values() if value.is_floating_point())


# Last: compiling takes the longest, so a time limit (scripts/gpu_check.sh) cuts these rather than the others.
@pytest.mark.parametrize("model_name", list(ARCHITECTURES))
def test_compile_trains_three_steps(tmp_path, model_name):
    folder = train(tmp_path, model_name, "compiled", "--compile")
    losses = logged_losses(folder)
    assert len(losses) == 3 and all(math.isfinite(value) for step in losses for value in step.values()), losses
    generator = "G1" if model_name == "cascade3" else "G"
    keys = torch.load(folder / f"latest_net_{generator}.pth", weights_only=True).keys()
    assert not any("_orig_mod" in key for key in keys)  # checkpoints keep plain keys
