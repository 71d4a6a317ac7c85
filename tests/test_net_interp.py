"""scripts/net_interp.py: blending a PSNR and a GAN generator and evaluating each blend."""
from __future__ import annotations

import csv
import importlib.util
import json

import pytest
import torch

import test as test_script
from conftest import REPO_ROOT
from models.networks import define_sr_G
from test_irsrgan import TINY_G, write_sr_dataset
from util.errors import UserError

_spec = importlib.util.spec_from_file_location("net_interp", REPO_ROOT / "scripts" / "net_interp.py")
net_interp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(net_interp)


def generator_state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return define_sr_G(1, 1, 8, 1, 4, 4, "crdb").state_dict()


def test_interpolation_is_exact_at_both_ends_and_linear_between():
    psnr, gan = generator_state(0), generator_state(1)
    assert all(torch.equal(net_interp.interpolate(psnr, gan, 0.0)[key], psnr[key]) for key in psnr)
    assert all(torch.equal(net_interp.interpolate(psnr, gan, 1.0)[key], gan[key]) for key in psnr)
    blend = net_interp.interpolate(psnr, gan, 0.3)
    key = "conv_first.weight"
    torch.testing.assert_close(blend[key], 0.7 * psnr[key] + 0.3 * gan[key])
    other = {key: value for key, value in gan.items() if not key.startswith("body.0.fuse")}
    with pytest.raises(UserError, match="different layers \\(body.0.fuse.bias"):
        net_interp.interpolate(psnr, other, 0.5)


def test_sweep_evaluates_each_blend_with_test_py_code(tmp_path, capsys):
    root = write_sr_dataset(tmp_path / "data", {"test": 2})
    torch.save(generator_state(0), tmp_path / "psnr_G.pth")
    torch.save({"params_ema": generator_state(1)}, tmp_path / "gan_basicsr_layout.pth")  # any supported layout
    out = tmp_path / "interp"
    rows = net_interp.main(["--psnr_weights", str(tmp_path / "psnr_G.pth"), "--gan_weights",
                            str(tmp_path / "gan_basicsr_layout.pth"), "--lambdas", "0", "0.5", "1", "--out", str(out),
                            "--dataroot", str(root), *TINY_G])
    assert [weight for weight, _ in rows] == [0.0, 0.5, 1.0]
    blend = torch.load(out / "interp_0.00" / "latest_net_G.pth", weights_only=True)
    assert all(torch.equal(blend[key], value) for key, value in generator_state(0).items())

    # Lambda 0 and 1 reproduce test.py on the two inputs exactly.
    for weight, path in ((0.0, "psnr_G.pth"), (1.0, "gan_basicsr_layout.pth")):
        run = test_script.main(["--model", "irsrgan", "--dataroot", str(root), "--pretrained_G", str(tmp_path / path),
                                "--checkpoints_dir", str(tmp_path / "ck"), "--results_dir", str(tmp_path / "direct"),
                                "--name", f"direct_{weight}", *TINY_G])
        direct = json.loads((run.web_dir / "metrics.json").read_text())
        measured = dict(rows)[weight]
        assert measured.keys() == direct.keys() and "psnr" in measured
        assert all(measured[name] == (direct[name]["mean"], direct[name]["std"]) for name in direct)
    assert dict(rows)[0.0]["psnr"] != dict(rows)[1.0]["psnr"]

    table = capsys.readouterr().out
    assert "| lambda | PSNR | SSIM | RMSE |" in table and "| 0.5 | " in table
    with open(out / "net_interp.csv") as handle:
        assert [row["lambda"] for row in csv.DictReader(handle)] == ["0.0", "0.5", "1.0"]
    assert (out / "net_interp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "interp_0.50" / "test_latest" / "images" / "000_SR.png").is_file()


def test_default_sweep_and_bad_weights(tmp_path):
    args, test_args = net_interp.parse_args(["--psnr_weights", "a", "--gan_weights", "b", "--phase", "val"])
    assert args.lambdas == pytest.approx([0.1, 0.3, 0.5, 0.7, 0.9])
    assert test_args == ["--phase", "val"]  # --model irsrgan is added only for weights without a saved run
    with pytest.raises(UserError, match="--lambdas must lie in \\[0, 1\\]"):
        net_interp.parse_args(["--psnr_weights", "a", "--gan_weights", "b", "--lambdas", "1.5"])
    with pytest.raises(UserError, match="does not exist"):
        net_interp.main(["--psnr_weights", str(tmp_path / "absent.pth"), "--gan_weights", "b", "--no_eval"])
