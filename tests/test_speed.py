"""Speed options (--amp, --channels_last, --compile), batched testing, sharded sampling."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
import torch.nn as nn

import test as test_script
import train as train_script
from conftest import write_aligned_dataset
from data.loader import EpochSampler, SizeGroupedBatches
from models import create_model
from models.network_wrappers import unwrap
from models.precision import MixedPrecision, resolve_amp
from options.train_options import TrainOptions
from test_irsrgan import TINY_G
from util import distributed
from util.errors import UserError
from util.image_io import read_image, write_image

TINY_NETWORKS = ["--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8"]  # test.py repeats these
TINY_TRAIN = [*TINY_NETWORKS, "--crop_size", "32", "--load_size", "36", "--num_threads", "0", "--print_freq", "1",
              "--n_epochs", "1", "--n_epochs_decay", "0", "--display_id", "0", "--no_html"]


def test_fp16_needs_cuda(tmp_path, aligned_root):
    with pytest.raises(UserError, match="--amp fp16 needs a CUDA device .* use --amp bf16"):
        train_script.main(["--dataroot", str(aligned_root), "--checkpoints_dir", str(tmp_path), *TINY_TRAIN,
                           "--device", "cpu", "--amp", "fp16"])


@pytest.mark.parametrize("amx", [True, False])
def test_amp_auto_is_bf16_only_on_cpus_with_amx(tmp_path, aligned_root, monkeypatch, amx):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    expected = "bf16" if amx else "none"
    assert resolve_amp("auto", "cpu") == expected
    assert resolve_amp("fp16", "cpu") == "fp16" and resolve_amp("none", "cpu") == "none"  # explicit modes kept
    assert MixedPrecision("auto", torch.device("cpu")).mode == expected
    opt = TrainOptions().parse(["--dataroot", str(aligned_root), "--checkpoints_dir", str(tmp_path), "--device",
                                "cpu", "--amp", "auto"], save=False)
    assert opt.amp == expected  # the run records what it ran, not "auto"


def test_bf16_autocast_region_and_fp32_gradients():
    precision = MixedPrecision("bf16", torch.device("cpu"))
    conv = nn.Conv2d(2, 3, 3)
    optimizer = torch.optim.SGD(conv.parameters(), lr=0.1)
    before = conv.weight.detach().clone()
    with precision.autocast():
        output = conv(torch.randn(1, 2, 8, 8))
        loss = output.float().square().mean()
    assert output.dtype == torch.bfloat16
    precision.backward(loss)
    assert conv.weight.grad.dtype == torch.float32  # weights and their gradients stay fp32
    precision.step([optimizer])
    assert not torch.equal(conv.weight, before)
    optimizer.zero_grad()
    precision.backward(conv(torch.randn(1, 2, 8, 8)).square().mean())
    with precision.autocast():  # later forward passes in the region see the updated weights
        stale = conv(torch.ones(1, 2, 8, 8))
        precision.step([optimizer])
        assert not torch.equal(conv(torch.ones(1, 2, 8, 8)), stale)
    with MixedPrecision("none", torch.device("cpu")).autocast():
        assert conv(torch.randn(1, 2, 8, 8)).dtype == torch.float32


def test_bf16_channels_last_training_then_batched_test(tmp_path):
    root = write_aligned_dataset(tmp_path / "data", {"train": 4, "test": 3}, size=32)
    fast = ["--amp", "bf16", "--channels_last"]
    common = ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), "--name", "fast"]
    train_script.main([*common, *TINY_TRAIN, *fast])
    lines = [line for line in (tmp_path / "ck" / "fast" / "loss_log.txt").read_text().splitlines() if "G_L1" in line]
    assert len(lines) == 4 and all(math.isfinite(float(value)) for value in lines[-1].split()[-7::2])
    weights = torch.load(tmp_path / "ck" / "fast" / "latest_net_G.pth", weights_only=True)
    assert all(tensor.is_contiguous() for tensor in weights.values())  # the usual layout, not channels-last
    assert {tensor.dtype for tensor in weights.values() if tensor.is_floating_point()} == {torch.float32}

    # The same images through test.py in batches of 2 (the last batch holds 1) and one by one.
    outputs = {}
    for batch_size in ("1", "2"):
        run = test_script.main([*common, *TINY_NETWORKS, "--crop_size", "32", "--num_threads", "0", "--eval",
                                "--results_dir", str(tmp_path / f"results_{batch_size}"), "--batch_size", batch_size,
                                *fast])
        assert run.images == 3 and run.first_image_seconds > 0  # reported, not judged: timing varies
        outputs[batch_size] = [read_image(run.web_dir / "images" / f"{i:04d}_fake_B.png").astype(int) for i in range(3)]
    for single, batched in zip(outputs["1"], outputs["2"]):
        # bf16 rounding may differ with the batch layout; the images agree within a grey level.
        assert np.abs(single - batched).max() <= 1


def test_batched_test_groups_images_of_different_sizes(tmp_path):
    hr = tmp_path / "data"
    rng = np.random.default_rng(0)
    for index, (height, width) in enumerate([(64, 48), (64, 48), (40, 56), (64, 48)]):
        coarse = rng.random((height // 8, width // 8))
        write_image(hr / "test" / f"{index:03d}.png", (np.kron(coarse, np.ones((8, 8))) * 255).astype(np.uint8))
    weights = tmp_path / "G.pth"
    torch.manual_seed(0)
    from models.networks import define_sr_G

    torch.save(define_sr_G(1, 1, 8, 1, 4, 4, "crdb").state_dict(), weights)
    results = {}
    for batch_size in ("1", "3"):
        run = test_script.main(["--model", "irsrnet", "--dataroot", str(hr), "--pretrained_G", str(weights),
                                "--name", "sr", "--checkpoints_dir", str(tmp_path / "ck"), *TINY_G,
                                "--num_threads", "0", "--batch_size", batch_size,
                                "--results_dir", str(tmp_path / f"results_{batch_size}")])
        assert run.images == 4
        results[batch_size] = [read_image(run.web_dir / "images" / f"{i:03d}_SR.png") for i in range(4)]
    for single, batched in zip(results["1"], results["3"]):
        assert single.shape == batched.shape
        assert np.abs(single.astype(int) - batched.astype(int)).max() <= 1


def test_size_grouped_batches_keep_order_and_split_at_size_changes():
    sizes = [(8, 8), (8, 8), (8, 8), (6, 8), (8, 8)]
    samples = [{"A": torch.full((1, *size), float(i)), "A_paths": f"{i}.png"} for i, size in enumerate(sizes)]
    batches = list(SizeGroupedBatches(samples, batch_size=2))
    assert [batch["A_paths"] for batch in batches] == [["0.png", "1.png"], ["2.png"], ["3.png"], ["4.png"]]
    assert [tuple(batch["A"].shape) for batch in batches] == [(2, 1, 8, 8), (1, 1, 8, 8), (1, 1, 6, 8), (1, 1, 8, 8)]


def test_epoch_sampler_shards_the_shared_order_for_each_process():
    single = EpochSampler(5, shuffle=True, seed=3)
    shards = [EpochSampler(5, shuffle=True, seed=3, rank=rank, world_size=2) for rank in (0, 1)]
    for sampler in (single, *shards):
        sampler.set_epoch(4)
    order = [index for _epoch, index in single]
    keys = [list(shard) for shard in shards]
    # Every process runs the same number of steps; the order is padded with its own start.
    assert [len(shard) for shard in shards] == [3, 3] and [len(k) for k in keys] == [3, 3]
    assert [key[1] for key in keys[0]] == order[0::2] and [key[1] for key in keys[1]] == order[1::2] + order[:1]
    assert all(epoch == 4 for shard in keys for epoch, _ in shard)
    shards[1].set_epoch(4, skip=2)  # a resumed run skips this process's first samples
    assert [index for _epoch, index in shards[1]] == (order[1::2] + order[:1])[2:] and len(shards[1]) == 1


def test_compiled_networks_save_plain_checkpoint_keys(tmp_path, aligned_root):
    opt = TrainOptions().parse(["--dataroot", str(aligned_root), "--checkpoints_dir", str(tmp_path), *TINY_TRAIN,
                                "--compile", "--channels_last"], save=False)
    model = create_model(opt)
    model.setup()  # torch.compile is lazy: nothing is compiled until a network is called
    assert hasattr(model.netG, "_orig_mod") and model.netG.size_multiple == unwrap(model.netG).size_multiple
    assert unwrap(model.netG).model[1].weight.is_contiguous(memory_format=torch.channels_last)
    model.save_checkpoint("latest", {"epoch": 0})
    saved = torch.load(tmp_path / opt.name / "latest_net_G.pth", weights_only=True)
    assert list(saved) == list(unwrap(model.netG).state_dict())
    assert all(tensor.is_contiguous() for tensor in saved.values())


def test_sync_bn_needs_cuda(monkeypatch):
    monkeypatch.setitem(os.environ, "WORLD_SIZE", "2")
    opt = TrainOptions().parse(["--sync_bn", "--device", "cpu"], save=False)
    with pytest.raises(UserError, match=r"--sync_bn \(or --norm syncbatch\) needs CUDA"):
        distributed.init_from_environment(opt)
    assert not distributed.is_distributed()
    assert TrainOptions().parse(["--norm", "syncbatch", "--device", "cpu"], save=False).sync_bn


def test_single_process_helpers_are_no_ops():
    assert distributed.world_size() == 1 and distributed.is_main_process()
    assert distributed.broadcast_float(1.5, torch.device("cpu")) == 1.5
    net = nn.Linear(2, 2)
    distributed.check_replicas({"G": net})  # nothing to compare with
    assert unwrap(net) is net
