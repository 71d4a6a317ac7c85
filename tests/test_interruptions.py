"""Interruptions: SIGINT/SIGTERM save an 'interrupted' checkpoint and exit cleanly; SIGKILL at
any moment (also in the middle of writing a checkpoint) never leaves a half-written file under a
checkpoint's name, and resuming always works and ends with the weights of an uninterrupted run."""
from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import util.checkpoint as checkpoint
from conftest import REPO_ROOT, run_script, write_aligned_dataset
from models import create_model
from options.train_options import TrainOptions
from util.checkpoint import finish_interrupted_save, partial_path, safe_load, save_files_together
from util.errors import UserError
from util.interrupts import load_newest_checkpoint

TINY = ["--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--crop_size", "32", "--load_size", "36",
        "--n_epochs", "2", "--n_epochs_decay", "1", "--deterministic", "--display_id", "0", "--val_freq", "0",
        "--no_html"]

# Runs train.py with events on stdout: "EVENT step" after each training step (then a pause), "EVENT half <file>"
# with a checkpoint file half written (then a pause), "EVENT replaced <file>" after each rename
# of a checkpoint file into place (then a pause). The test kills the process at chosen events.
DRIVER = '''
import io, os, sys, time
sys.path.insert(0, {repo!r})
import torch
import util.numerics
delay = float(os.environ.get("DRIVER_DELAY", "0"))
step_delay = float(os.environ.get("DRIVER_STEP_DELAY", "0"))
real_save, real_replace, real_optimize = torch.save, os.replace, util.numerics.StepGuard.optimize

def slow_save(obj, handle, *args, **kwargs):
    buffer = io.BytesIO()
    real_save(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    handle.write(data[: len(data) // 2])
    handle.flush()
    print("EVENT half", handle.name, flush=True)
    time.sleep(delay)
    handle.write(data[len(data) // 2:])

def slow_replace(source, target):
    real_replace(source, target)
    print("EVENT replaced", target, flush=True)
    time.sleep(delay)

def announced_optimize(self, where):
    stepped = real_optimize(self, where)
    print("EVENT step", flush=True)
    time.sleep(step_delay)
    return stepped

torch.save, os.replace, util.numerics.StepGuard.optimize = slow_save, slow_replace, announced_optimize
import train
from util.errors import run_cli
run_cli(train.main, sys.argv[1:])
'''


class Training:
    """train.py through the driver, its stdout read line by line on a thread."""

    def __init__(self, tmp: Path, args: list[str], delay: float = 0.0, step_delay: float = 0.0,
                 new_session: bool = False) -> None:
        driver = tmp / "driver.py"
        driver.write_text(DRIVER.format(repo=str(REPO_ROOT)))
        env = {**os.environ, "DRIVER_DELAY": str(delay), "DRIVER_STEP_DELAY": str(step_delay), "PYTHONUNBUFFERED": "1",
               "OMP_NUM_THREADS": "2"}
        self.process = subprocess.Popen([sys.executable, str(driver), *args], cwd=tmp, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        start_new_session=new_session)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, predicate, count: int = 1) -> bool:
        """Read until ``predicate`` held for ``count`` events (the text after "EVENT ", or a whole
        line that is not an event); False when the process ended first."""
        while count > 0:
            line = self.lines.get(timeout=300)
            if line is None:
                return False
            self.output.append(line)
            # A progress bar (stderr) may precede an event on the same line.
            count -= bool(predicate(line.split("EVENT ", 1)[1] if "EVENT " in line else line))
        return True

    def finish(self) -> int:
        while (line := self.lines.get(timeout=300)) is not None:
            self.output.append(line)
        return self.process.wait(timeout=60)


def train_args(tmp: Path, root: Path, name: str, *extra: str) -> list[str]:
    return ["--dataroot", str(root), "--name", name, "--checkpoints_dir", str(tmp / "ck"), *TINY, *extra]


def weights(folder: Path, tag: str = "latest") -> dict[str, torch.Tensor]:
    return {f"{net}.{key}": value for net in ("G", "D")
            for key, value in torch.load(folder / f"{tag}_net_{net}.pth", weights_only=True).items()}


def assert_same_weights(expected: dict[str, torch.Tensor], actual: dict[str, torch.Tensor]) -> None:
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key


def assert_whole_files_only(folder: Path) -> None:
    """Every file under a checkpoint's name loads completely; partial ones only have temporary names."""
    for path in folder.glob("*.pth"):
        safe_load(path)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return write_aligned_dataset(tmp_path_factory.mktemp("interrupt_data") / "data", {"train": 4}, size=32)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_root) -> dict[str, torch.Tensor]:
    """The weights after an uninterrupted run of the schedule (3 epochs x 4 images)."""
    tmp = tmp_path_factory.mktemp("reference")
    run_script("train.py", *train_args(tmp, data_root, "straight", "--num_threads", "0"), cwd=tmp)
    return weights(tmp / "ck" / "straight")


# ---------------------------------------------------------------- SIGKILL
def test_sigkill_at_random_moments_then_resume_equals_uninterrupted(tmp_path, data_root, reference):
    rng = random.Random(20240611)
    args = train_args(tmp_path, data_root, "killed", "--num_threads", "0", "--save_latest_freq", "1",
                      "--save_epoch_freq", "1")
    folder = tmp_path / "ck" / "killed"
    # While writing a file, between two renames of a checkpoint set, and at a random time.
    moments = [("half", rng.randint(1, 6)), ("replaced", rng.randint(1, 6)), ("time", rng.uniform(0.0, 1.0))]
    left_behind = []
    for attempt, (kind, when) in enumerate(moments):
        training = Training(tmp_path, args + (["--continue_train"] if attempt else []), delay=0.1)
        # Kill only once a whole checkpoint exists: before that there is nothing to resume.
        assert training.wait_for(lambda event: event.startswith("replaced") and event.endswith("_state.pth"))
        if kind == "time":
            time.sleep(when)
        else:
            assert training.wait_for(lambda event: event.startswith(kind), count=when)
        training.process.send_signal(signal.SIGKILL)
        assert training.finish() == -signal.SIGKILL
        if attempt:  # the previous kill was handled when this run resumed
            assert "resuming from checkpoint 'latest'" in "\n".join(training.output)
        left_behind.append(sorted(path.name for path in folder.iterdir() if not path.name.endswith(".pth")))
        assert_whole_files_only(folder)
        if kind == "replaced":
            resumed = Training(tmp_path, args + ["--continue_train"])
            assert resumed.wait_for(lambda text: "completed a save that was interrupted after it was written" in text)
            resumed.process.send_signal(signal.SIGKILL)
            resumed.finish()
    # The first kill interrupted a write (a partial file, no commit marker); the second a commit.
    assert any(name.endswith(".partial") for name in left_behind[0])
    assert not any(name.endswith(".commit") for name in left_behind[0])
    assert any(name.endswith(".commit") for name in left_behind[1])

    result = run_script("train.py", *args, "--continue_train", cwd=tmp_path)
    assert "resuming at epoch" in result.stdout + result.stderr
    assert_same_weights(reference, weights(folder))
    assert not [path.name for path in folder.iterdir() if path.name.endswith((".partial", ".commit"))]


# ------------------------------------------------------------ SIGTERM, SIGINT
@pytest.mark.parametrize(("signum", "workers"), [(signal.SIGTERM, "0"), (signal.SIGINT, "1")])
def test_signal_saves_interrupted_checkpoint_and_resume_continues(tmp_path, data_root, reference, signum, workers):
    """SIGTERM to the process; SIGINT to its whole process group, as Ctrl-C in a terminal does
    (the data-loader worker must survive it)."""
    args = train_args(tmp_path, data_root, "stopped", "--num_threads", workers, "--save_latest_freq", "1000")
    folder = tmp_path / "ck" / "stopped"
    training = Training(tmp_path, args, step_delay=0.3, new_session=True)
    assert training.wait_for(lambda event: event == "step", count=6)  # epoch 2, batch 2
    os.killpg(training.process.pid, signum)
    assert training.finish() == 128 + signum
    output = "\n".join(training.output)
    assert f"{signal.Signals(signum).name} received: finishing this step" in output
    assert "Traceback" not in output and "DataLoader worker" not in output
    progress = safe_load(folder / "interrupted_state.pth")["progress"]
    # The step during which the signal came is finished first (on a loaded machine, a later one).
    done = progress["batches_done"]
    assert progress["epoch"] == 2 and done >= 2 and progress["total_iters"] == 4 + done
    assert progress["epoch_complete"] == (done == 4)

    result = run_script("train.py", *args, "--continue_train", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert "resuming from checkpoint 'interrupted'" in output
    assert ("resuming at epoch 3 (0 batches" if done == 4 else f"resuming at epoch 2 ({done} batches") in output
    assert_same_weights(reference, weights(folder))


# ------------------------------------------------- the commit, crash by crash
class Crash(Exception):
    pass


def test_a_crash_at_any_step_of_a_save_leaves_the_old_or_the_new_set(tmp_path, monkeypatch):
    """Every file write, the commit marker and every rename: crash before each one in turn."""
    paths = [tmp_path / "x_net_G.pth", tmp_path / "x_net_D.pth", tmp_path / "x_state.pth"]
    old = [{"v": torch.full((3,), float(index))} for index in range(3)]
    new = [{"v": torch.full((3,), 10.0 + index)} for index in range(3)]
    real = {"write": checkpoint._write_synced, "replace": os.replace, "touch": Path.touch}
    crash_points, outcomes = 0, set()
    while True:
        save_files_together(list(zip(paths, old)))
        calls = {"left": crash_points}

        def counted(name):
            def call(*args, **kwargs):
                if calls["left"] == 0:
                    raise Crash(name)
                calls["left"] -= 1
                return real[name](*args, **kwargs)
            return call

        monkeypatch.setattr(checkpoint, "_write_synced", counted("write"))
        monkeypatch.setattr(checkpoint.os, "replace", counted("replace"))
        monkeypatch.setattr(Path, "touch", counted("touch"))
        try:
            save_files_together(list(zip(paths, new)))
            finished = True
        except Crash:
            finished = False
        monkeypatch.undo()
        finish_interrupted_save(paths)
        contents = [torch.load(path, weights_only=True)["v"][0].item() for path in paths]
        assert contents in ([0.0, 1.0, 2.0], [10.0, 11.0, 12.0]), (crash_points, contents)
        assert not [p for p in tmp_path.iterdir() if p.name.endswith((".partial", ".commit"))]
        outcomes.add(contents[0])
        if finished:
            break
        crash_points += 1
    assert crash_points == 7 and outcomes == {0.0, 10.0}  # 3 writes, the marker, 3 renames


def test_partial_files_of_a_crashed_save_never_reach_the_final_names(tmp_path):
    paths = [tmp_path / "a.pth", tmp_path / "b_state.pth"]
    save_files_together([(paths[0], {"v": torch.zeros(1)}), (paths[1], {"v": torch.zeros(1)})])
    partial_path(paths[0]).write_bytes(b"half a file")  # a save killed while writing, before its commit
    save_files_together([(paths[0], {"v": torch.ones(1)}), (paths[1], {"v": torch.ones(1)})])
    assert [torch.load(path, weights_only=True)["v"].item() for path in paths] == [1.0, 1.0]


# ------------------------------------------------------- which checkpoint to resume
def tiny_model(tmp_path: Path, root: Path, *args: str):
    opt = TrainOptions().parse(["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), "--name", "pick",
                                "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--crop_size", "32", *args],
                               save=False)
    model = create_model(opt)
    model.setup()
    return model


def save(model, tag: str, total_iters: int, stamp: int) -> None:
    model.save_checkpoint(tag, {"epoch": 1, "epoch_complete": False, "batches_done": total_iters,
                                "total_iters": total_iters})
    for path in model.checkpoint_files(tag):
        os.utime(path, ns=(stamp, stamp))


def test_resume_picks_the_newest_whole_checkpoint(tmp_path, data_root, caplog):
    model = tiny_model(tmp_path, data_root)
    save(model, "latest", 4, stamp=1_000_000_000_000_000_000)
    save(model, "interrupted", 6, stamp=2_000_000_000_000_000_000)
    assert load_newest_checkpoint(tiny_model(tmp_path, data_root))[0] == "interrupted"
    save(model, "latest", 8, stamp=3_000_000_000_000_000_000)  # a run resumed from 'interrupted' saved again
    assert load_newest_checkpoint(tiny_model(tmp_path, data_root)) == (
        "latest", {"epoch": 1, "epoch_complete": False, "batches_done": 8, "total_iters": 8})
    # An explicit --epoch is loaded as given.
    assert load_newest_checkpoint(tiny_model(tmp_path, data_root, "--epoch", "interrupted"))[1]["total_iters"] == 6

    (tmp_path / "ck" / "pick" / "latest_net_D.pth").write_bytes(b"damaged by hand")
    with caplog.at_level("WARNING"):
        assert load_newest_checkpoint(tiny_model(tmp_path, data_root))[0] == "interrupted"
    assert "cannot resume from checkpoint 'latest' (cannot read checkpoint" in caplog.text
    (tmp_path / "ck" / "pick" / "interrupted_state.pth").unlink()
    (tmp_path / "ck" / "pick" / "interrupted_net_G.pth").unlink()
    with pytest.raises(UserError, match="interrupted_net_G.pth does not exist"):
        load_newest_checkpoint(tiny_model(tmp_path, data_root))
