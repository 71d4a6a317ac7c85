"""Checkpoint files: atomic writes, weights-only loading, interrupted-save detection."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from models import create_model
from options.train_options import TrainOptions
from util.checkpoint import atomic_save, load_state_dict_file, safe_load, state_dict_digest
from util.errors import UserError


class _Payload:
    """Unpickling this runs code: it would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_atomic_save_replaces_without_leftovers(tmp_path):
    path = tmp_path / "net.pth"
    atomic_save({"w": torch.ones(2)}, path)
    atomic_save({"w": torch.zeros(2)}, path)
    assert torch.equal(safe_load(path)["w"], torch.zeros(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.pth"]


def test_malicious_pickle_is_refused_without_running_code(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pth"
    torch.save({"w": torch.ones(1), "x": _Payload(marker)}, path)
    with pytest.raises(UserError, match=r"refusing to load .*evil\.pth: it is not a plain state dict"):
        safe_load(path)
    assert not marker.exists()


def test_non_state_dict_is_refused(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.ones(1)], path)
    with pytest.raises(UserError, match="is not a network state dict"):
        load_state_dict_file(path)


def test_corrupt_and_missing_checkpoints_fail_clearly(tmp_path):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"cannot read checkpoint .*corrupt\.pth"):
        safe_load(corrupt)
    with pytest.raises(UserError, match=r"missing\.pth does not exist"):
        safe_load(tmp_path / "missing.pth")


def test_wrapper_prefixes_are_stripped(tmp_path):
    path = tmp_path / "ddp.pth"
    torch.save({"module._orig_mod.conv.weight": torch.ones(1)}, path)
    assert list(load_state_dict_file(path)) == ["conv.weight"]


def test_digest_depends_on_values_and_names():
    base = {"a": torch.zeros(3), "n": torch.tensor(1)}
    assert state_dict_digest(base) == state_dict_digest({k: v.clone() for k, v in base.items()})
    assert state_dict_digest(base) != state_dict_digest({**base, "a": torch.tensor([0.0, 0.0, 1e-7])})
    assert state_dict_digest(base) != state_dict_digest({"b": base["a"], "n": base["n"]})


def tiny_model(tmp_path: Path, aligned_root: Path, *args: str):
    opt = TrainOptions().parse(["--dataroot", str(aligned_root), "--checkpoints_dir", str(tmp_path / "ck"),
                                "--name", "ckpt", "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4",
                                "--crop_size", "32", *args], save=False)
    model = create_model(opt)
    model.setup()
    return model


def test_checkpoint_round_trip_restores_everything(tmp_path, aligned_root):
    model = tiny_model(tmp_path, aligned_root)
    model.set_input({"A": torch.rand(1, 1, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1,
                     "A_paths": ["a"], "B_paths": ["b"]})
    model.optimize_parameters()
    model.update_learning_rate()
    model.save_checkpoint("latest", {"epoch": 3, "epoch_complete": True, "batches_done": 4, "total_iters": 12})
    expected_rng = torch.get_rng_state()
    torch.manual_seed(123)

    restored = tiny_model(tmp_path, aligned_root)
    progress = restored.load_checkpoint("latest")
    assert progress == {"epoch": 3, "epoch_complete": True, "batches_done": 4, "total_iters": 12}
    assert torch.equal(torch.get_rng_state(), expected_rng)
    for name in ("G", "D"):
        for (key, a), b in zip(model.networks()[name].state_dict().items(),
                               restored.networks()[name].state_dict().values()):
            assert torch.equal(a, b), key
    exp_avg = model.optimizer_G.state_dict()["state"][0]["exp_avg"]
    assert restored.optimizer_G.state_dict()["state"][0]["exp_avg"].equal(exp_avg)
    assert restored.schedulers[0].last_epoch == 1


def test_interrupted_save_is_detected(tmp_path, aligned_root):
    model = tiny_model(tmp_path, aligned_root)
    model.save_checkpoint("latest", {"epoch": 1, "epoch_complete": True, "batches_done": 1, "total_iters": 1})
    # Simulate a crash after the generator of a newer save was written but before its state file.
    newer = {key: value + 1 if value.is_floating_point() else value for key, value in model.netG.state_dict().items()}
    atomic_save(newer, model.net_path("latest", "G"))
    with pytest.raises(UserError, match="checkpoint 'latest' .* is inconsistent"):
        tiny_model(tmp_path, aligned_root).load_checkpoint("latest")


def test_weights_from_another_architecture_fail_clearly(tmp_path, aligned_root):
    tiny_model(tmp_path, aligned_root).save_checkpoint(
        "latest", {"epoch": 1, "epoch_complete": True, "batches_done": 1, "total_iters": 1})
    other = tiny_model(tmp_path, aligned_root, "--ngf", "8")
    with pytest.raises(UserError, match=r"latest_net_G\.pth does not fit network G as configured.*--ngf"):
        other.load_checkpoint("latest")


def test_pickle_module_error_type_is_what_torch_raises(tmp_path):
    # Guards the except clause in safe_load: weights_only refusals surface as UnpicklingError.
    path = tmp_path / "obj.pth"
    torch.save({"x": _Payload(tmp_path / "m")}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_weights_only_checkpoint_resumes_weights(tmp_path, aligned_root, caplog):
    """Upstream pix2pix writes only network files: resuming loads them and says what restarts."""
    model = tiny_model(tmp_path, aligned_root)
    model.save_checkpoint("latest", {"epoch": 1, "epoch_complete": True, "batches_done": 1, "total_iters": 1})
    model.state_path("latest").unlink()
    restored = tiny_model(tmp_path, aligned_root)
    with caplog.at_level("WARNING"):
        assert restored.load_checkpoint("latest") is None
    assert "resuming from the weights only" in caplog.text
    assert all(torch.equal(a, b) for a, b in zip(model.netD.state_dict().values(), restored.netD.state_dict().values()))
