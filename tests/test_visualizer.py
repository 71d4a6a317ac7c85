"""Visualisation: visdom (a real server on a free loopback port), W&B offline, HTML pages, loss PNG."""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT, run_script, write_aligned_dataset
from options.train_options import TrainOptions
from util.errors import UserError
from util.loss_log import LossLog
from util.loss_plot import read_loss_log, running_mean, write_loss_plot
from util.visualizer import EpochPages, LineWindow, VisdomDisplay

TINY = ["--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8", "--crop_size", "32", "--load_size", "36",
        "--num_threads", "0", "--n_epochs", "1", "--n_epochs_decay", "0", "--print_freq", "1", "--display_freq", "1",
        "--update_html_freq", "1"]
LOSS_NAMES = ["G_GAN", "G_L1", "D_real", "D_fake"]
ENV = "visualizer_test"


def free_port() -> int:
    """A loopback port nothing listens on (bound and released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def logged_losses(folder: Path) -> list[dict[str, str]]:
    """The loss values of loss_log.txt as the strings written there."""
    lines = [line for line in (folder / "loss_log.txt").read_text().splitlines() if line.startswith("(epoch")]
    return [dict(re.findall(r"(\w+): (\S+)", line.split(") ", 1)[1])) for line in lines]


def validation_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "val_log.csv") as handle:
        return list(csv.DictReader(handle))


def train(tmp: Path, root: Path, name: str, *args: str):
    return run_script("train.py", "--dataroot", str(root), "--name", name,
                      "--checkpoints_dir", str(tmp / "checkpoints"), *TINY, *args, cwd=tmp)


# ------------------------------------------------------------------ visdom server
@contextlib.contextmanager
def running_visdom_server(folder: Path):
    """A visdom server of our own on a free loopback port; only this process is stopped afterwards."""
    import visdom  # noqa: F401  (a requirement: fail here, not with a confusing server log)

    port = free_port()
    log_path = folder / f"server_{port}.log"
    with open(log_path, "w") as log:
        # run_server.main() serves without visdom's start-up download from CDNs (which needs internet).
        server = subprocess.Popen([sys.executable, "-c", "from visdom.server.run_server import main; main()",
                                   "-port", str(port), "-bind_local", "-env_path", str(folder / "envs")],
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            for _ in range(300):  # up to about 30 s on a loaded machine; not a timing assertion
                if server.poll() is not None:
                    pytest.fail(f"visdom server exited: {log_path.read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    time.sleep(0.1)
            else:
                pytest.fail("visdom server did not answer")
            yield port
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture(scope="module")
def visdom_server(tmp_path_factory):
    with running_visdom_server(tmp_path_factory.mktemp("visdom")) as port:
        yield port


def visdom_client(port: int):
    import visdom

    return visdom.Visdom(server="http://127.0.0.1", port=port, env=ENV, raise_exceptions=True,
                         use_incoming_socket=False)


def window(port: int, win: str) -> dict:
    return json.loads(visdom_client(port).get_window_data(win=win, env=ENV))


@pytest.fixture(scope="module")
def displayed_run(tmp_path_factory, visdom_server):
    """Two training iterations (and one validation) shown in the test's visdom server."""
    tmp = tmp_path_factory.mktemp("displayed")
    root = write_aligned_dataset(tmp / "data", {"train": 2, "val": 2}, size=32)
    result = train(tmp, root, "shown", "--display_server", "http://127.0.0.1", "--display_port", str(visdom_server),
                   "--display_env", ENV)
    return tmp / "checkpoints" / "shown", result.stdout + result.stderr


def test_visdom_loss_window_equals_logged_losses(visdom_server, displayed_run):
    folder, output = displayed_run
    assert "not reachable" not in output
    logged = logged_losses(folder)
    assert len(logged) == 2 and list(logged[0]) == LOSS_NAMES
    traces = window(visdom_server, "1_losses")["content"]["data"]
    assert [trace["name"] for trace in traces] == LOSS_NAMES
    for trace in traces:
        # Fractional epoch: epoch - 1 + batches done / batches per epoch (2 batches).
        assert trace["x"] == [0.5, 1.0]
        assert [f"{value:.4f}" for value in trace["y"]] == [line[trace["name"]] for line in logged]

    validation = window(visdom_server, "1_validation")["content"]["data"]
    row = validation_rows(folder)[0]
    assert ({trace["name"]: f"{trace['y'][0]:.6f}" for trace in validation}
            == {k: row[k] for k in ("psnr", "ssim", "rmse")})
    images = window(visdom_server, "1_images")
    assert images["type"] == "image" and "epoch 1: real_A | fake_B | real_B" in images["title"]


def test_html_page_lists_the_saved_images(displayed_run):
    web = displayed_run[0] / "web"
    saved = sorted(path.name for path in (web / "images").iterdir())
    assert saved == ["epoch001_fake_B.png", "epoch001_real_A.png", "epoch001_real_B.png"]
    assert sorted(re.findall(r'src="images/([^"]+)"', (web / "index.html").read_text())) == saved
    with Image.open(web / "images" / "epoch001_fake_B.png") as output:
        assert (output.mode, output.size) == ("L", (32, 32))  # infrared output stays 1-channel


def test_loss_curve_png_written_at_epoch_end(displayed_run):
    with Image.open(displayed_run[0] / "loss_curves.png") as plot:
        assert plot.format == "PNG" and plot.size[0] > 300


def test_history_is_resent_after_reconnecting(visdom_server):
    display = VisdomDisplay("http://127.0.0.1", free_port(), ENV, retry_seconds=0.0)
    line = LineWindow("reconnect", "reconnect", "epoch", "loss")
    line.add(0.25, {"a": 1.0, "b": 2.0}, display)  # no server: kept in memory only
    line.add(0.5, {"a": 3.0, "b": 4.0}, display)
    display.port = visdom_server  # the server "comes back"
    line.add(0.75, {"a": 5.0, "b": 6.0}, display)  # whole history
    line.add(1.0, {"a": 7.0, "b": 8.0}, display)  # appended
    traces = window(visdom_server, "reconnect")["content"]["data"]
    assert [(trace["name"], trace["x"], trace["y"]) for trace in traces] == [
        ("a", [0.25, 0.5, 0.75, 1.0], [1.0, 3.0, 5.0, 7.0]), ("b", [0.25, 0.5, 0.75, 1.0], [2.0, 4.0, 6.0, 8.0])]
    assert display.connections == 1


@pytest.fixture(scope="module")
def chromium_and_page_files() -> str:
    """Chromium's path, once the visdom page's JS/CSS files are in this environment's visdom package.

    Missing files are installed here, with npm, by scripts/install_visdom_assets.py (as .ci/run did before
    building the environment a second time); without chromium, or without npm and the files, the test is skipped.
    """
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian 'chromium' is not installed (apt-get install chromium; .ci/run installs it)")
    assets = [sys.executable, str(REPO_ROOT / "scripts" / "install_visdom_assets.py")]
    check = subprocess.run([*assets, "--check"], capture_output=True, text=True)
    if check.returncode != 0:
        if shutil.which("npm") is None:
            pytest.skip(f"the visdom page's JS/CSS files are missing ({check.stdout.strip()}) and npm is not "
                        f"installed; run: python scripts/install_visdom_assets.py")
        installed = subprocess.run(assets, capture_output=True, text=True, timeout=600)
        if installed.returncode != 0:
            message = f"scripts/install_visdom_assets.py failed:\n{installed.stdout}{installed.stderr}"
            if os.environ.get("CI"):  # CI installs npm to run this test: a failure there is a failure
                pytest.fail(message)
            pytest.skip(message)
    return chromium


def test_browser_shows_the_loss_curve(chromium_and_page_files, visdom_server, displayed_run):
    chromium = chromium_and_page_files
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom",
             f"http://127.0.0.1:{visdom_server}/env/{ENV}"],
            capture_output=True, text=True, timeout=120).stdout
    assert 'data-unformatted="shown losses"' in dom  # the loss window's title, drawn by plotly
    legend = re.findall(r'class="legendtext"[^>]*data-unformatted="([^"]+)"', dom)
    assert set(LOSS_NAMES) <= set(legend)
    # Each loss is a plotted line through both logged points ("M x,y L x,y").
    curves = re.findall(r'class="js-line" d="M[\d.,-]+L[\d.,-]+"', dom)
    assert len(curves) >= len(LOSS_NAMES)


# ----------------------------------------------------------- no server reachable
def test_server_lost_during_training_is_reported_once(tmp_path, caplog):
    line = LineWindow("lost", "t", "epoch", "loss")
    with caplog.at_level(logging.INFO, logger="util.visualizer"):
        with running_visdom_server(tmp_path) as port:
            display = VisdomDisplay("http://127.0.0.1", port, ENV, retry_seconds=0.0)
            line.add(0.5, {"G": 1.0}, display)
        for step in range(3):  # the server has stopped
            line.add(1.0 + step, {"G": 2.0}, display)
    assert [record.levelname for record in caplog.records] == ["INFO", "WARNING"]
    assert "live display" in caplog.records[0].getMessage()
    assert display.client is None and display.attempts == 3 and len(line.x) == 4


def test_unreachable_server_warns_once_and_retries_quietly(caplog):
    port = free_port()
    display = VisdomDisplay("http://127.0.0.1", port, ENV, retry_seconds=0.0)  # retry on every call
    line = LineWindow("losses", "t", "epoch", "loss")
    with caplog.at_level(logging.INFO, logger="util.visualizer"):
        for step in range(5):
            line.add(step / 5, {"G": float(step)}, display)
            assert not display.call("text", text="x")
    assert display.attempts == 10 and display.connections == 0
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert f"127.0.0.1:{port} is not reachable" in caplog.records[0].getMessage()
    assert "python -m visdom.server -port" in caplog.records[0].getMessage()
    assert line.x == [0.0, 0.2, 0.4, 0.6, 0.8]  # the history waits for a server

    waiting = VisdomDisplay("http://127.0.0.1", port, ENV, retry_seconds=3600.0)
    for _ in range(5):
        assert not waiting.connected()
    assert waiting.attempts == 1  # retries wait for the back-off interval


def test_training_without_server_completes_with_one_warning(tmp_path):
    root = write_aligned_dataset(tmp_path / "data", {"train": 3}, size=32)
    train(tmp_path, root, "offline", "--display_server", "http://127.0.0.1", "--display_port", str(free_port()))
    folder = tmp_path / "checkpoints" / "offline"
    assert (folder / "latest_net_G.pth").is_file() and len(logged_losses(folder)) == 3
    log = (folder / "train.log").read_text().splitlines()
    assert len([line for line in log if " WARNING util.visualizer" in line]) == 1
    assert len([line for line in log if "visdom" in line]) == 1


# ------------------------------------------------------------------ W&B offline
def read_wandb_records(path: Path) -> list:
    """Records of a ``.wandb`` file: a 7-byte header, then LevelDB-log framing in 32 KiB blocks
    (4-byte CRC, 2-byte length, 1-byte type: 1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, pending, position, block = [], b"", 7, 32768
    while position + 7 <= len(data):
        room = block - position % block
        if room < 7:  # block trailer padding
            position += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[position:position + 7])
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def test_wandb_offline_run_holds_the_logged_values(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    for variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / "wandb_home"))
    root = write_aligned_dataset(tmp_path / "data", {"train": 2, "val": 2}, size=32)
    train(tmp_path, root, "tracked", "--use_wandb", "--wandb_project_name", "irlab-test", "--display_id", "0",
          "--no_html")
    folder = tmp_path / "checkpoints" / "tracked"
    assert not (folder / "web").exists()  # --no_html
    [run_file] = (folder / "wandb").glob("offline-run-*/run-*.wandb")
    records = read_wandb_records(run_file)
    [run] = [record.run for record in records if record.WhichOneof("record_type") == "run"]
    assert (run.display_name, run.project) == ("tracked", "irlab-test")
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["name"] == "tracked" and config["ngf"] == 8

    history = []
    for record in records:
        if record.WhichOneof("record_type") == "history":
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in record.history.item})
    losses = [{key[len("loss/"):]: f"{value:.4f}" for key, value in row.items() if key.startswith("loss/")}
              for row in history]
    assert [row for row in losses if row] == logged_losses(folder)
    [validation] = [row for row in history if "val/psnr" in row]
    expected = validation_rows(folder)[0]
    assert {name: f"{validation[f'val/{name}']:.6f}" for name in ("psnr", "ssim", "rmse")} == \
        {name: expected[name] for name in ("psnr", "ssim", "rmse")}
    media = [path.name for path in run_file.parent.glob("files/media/images/**/*.png")]
    assert any(name.startswith("fake_B") for name in media), media


# ------------------------------------------------------------ pages and PNG parts
def test_epoch_pages_list_existing_images_newest_first(tmp_path):
    pages = EpochPages(tmp_path / "web", "t", width=64)
    grey, colour = np.zeros((8, 8), np.uint8), np.full((8, 8, 3), 200, np.uint8)
    pages.save({"real_A": colour, "fake_B": grey}, epoch=1)
    pages.save({"real_A": colour, "fake_B": grey}, epoch=3)
    (tmp_path / "web" / "images" / "epoch001_fake_B.png").unlink()
    html = pages.write_index().read_text()
    assert re.findall(r'src="images/([^"]+)"', html) == ["epoch003_real_A.png", "epoch003_fake_B.png",
                                                        "epoch001_real_A.png"]
    assert html.index("epoch 3") < html.index("epoch 1")


def test_loss_log_round_trip_and_plot(tmp_path):
    log_path = tmp_path / "loss_log.txt"
    log = LossLog(log_path)
    for epoch, iters in ((1, 2), (1, 4), (2, 6), (2, 8)):
        log.write(LossLog.format(epoch, iters, 0.1, 0.01, {"G_GAN": iters / 10, "D_real": 1 / iters}))
    LossLog(log_path)  # a resumed run: header line, then it logs again from image 6
    log.write(LossLog.format(2, 6, 0.1, 0.01, {"G_GAN": 9.0, "D_real": 0.5, "D_GP": 0.25}))
    history = read_loss_log(log_path)
    assert history.iters == [2, 4, 6] and history.epochs == [1, 1, 2]
    assert history.losses["G_GAN"] == [0.2, 0.4, 9.0]
    assert history.losses["D_real"] == [0.5, 0.25, 0.5]
    assert np.isnan(history.losses["D_GP"][:2]).all() and history.losses["D_GP"][2] == 0.25

    assert np.allclose(running_mean([1.0, np.nan, 3.0, 5.0], 2), [1.0, 1.0, 3.0, 4.0])

    png = tmp_path / "curves.png"
    assert write_loss_plot(log_path, png, "t")
    with Image.open(png) as image:
        assert image.format == "PNG"
    empty = tmp_path / "empty.txt"
    LossLog(empty)
    assert not write_loss_plot(empty, tmp_path / "none.png", "t") and not (tmp_path / "none.png").exists()


@pytest.mark.parametrize("flag, value", [("--display_port", "0"), ("--display_freq", "0"), ("--display_ncols", "-1")])
def test_bad_display_options_are_user_errors(flag, value, tmp_path):
    with pytest.raises(UserError, match=flag):
        TrainOptions().parse([flag, value, "--checkpoints_dir", str(tmp_path)], save=False)


def test_visuals_of_any_size_and_channels_reach_visdom(visdom_server, tmp_path):
    import base64
    import io

    import torch

    from util.visualizer import Visualizer

    # A black 1-channel 16 x 16 input and a white colour 32 x 32 output, as in super-resolution.
    visuals = {"real_A": torch.full((1, 1, 16, 16), -1.0), "fake_B": torch.ones(1, 3, 32, 32)}
    for ncols in (2, 0):
        opt = TrainOptions().parse(["--checkpoints_dir", str(tmp_path), "--name", f"cols{ncols}", "--display_server",
                                    "http://127.0.0.1", "--display_port", str(visdom_server), "--display_env", ENV,
                                    "--display_id", str(10 + ncols), "--display_ncols", str(ncols)], save=False)
        Visualizer(opt).display_current_results(visuals, epoch=3, step=5)
    content = window(visdom_server, "12_images")["content"]
    with Image.open(io.BytesIO(base64.b64decode(content["src"].split(",", 1)[1]))) as grid:
        assert grid.size == (2 * (32 + 4), 32 + 4)  # both scaled to 32 x 32, visdom's 2-pixel padding
        # Centre of each tile (JPEG-encoded by visdom, hence the tolerance).
        assert max(grid.convert("RGB").getpixel((18, 18))) <= 5
        assert min(grid.convert("RGB").getpixel((36 + 18, 18))) >= 250
    for name in visuals:
        assert window(visdom_server, f"10_images_{name}")["title"] == f"{name} (epoch 3)"


# --------------------------------------------------- failures never stop training
def test_server_dying_during_training_does_not_stop_it(tmp_path):
    """A real visdom server answers at first and is stopped while training runs."""
    root = write_aligned_dataset(tmp_path / "data", {"train": 4}, size=32)
    with running_visdom_server(tmp_path) as port:
        training = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "train.py"), "--dataroot", str(root), "--name", "dying",
             "--checkpoints_dir", str(tmp_path / "checkpoints"), *TINY, "--n_epochs", "3", "--display_server",
             "http://127.0.0.1", "--display_port", str(port), "--display_env", ENV],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in training.stdout:
            if "visdom: live display at" in line:
                break  # connected: now the server goes away
    output = training.stdout.read()
    assert training.wait(timeout=600) == 0, output
    folder = tmp_path / "checkpoints" / "dying"
    assert (folder / "3_net_G.pth").is_file() and len(logged_losses(folder)) == 12
    log = (folder / "train.log").read_text()
    assert log.count(f"visdom server http://127.0.0.1:{port} is not reachable") == 1
    assert "Traceback" not in output


def test_misconfigured_wandb_warns_and_training_completes(tmp_path):
    root = write_aligned_dataset(tmp_path / "data", {"train": 2}, size=32)
    env = {"WANDB_MODE": "no-such-mode", "WANDB_CONFIG_DIR": str(tmp_path / "wandb_home")}
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "train.py"), "--dataroot", str(root), "--name", "wb", "--checkpoints_dir",
         str(tmp_path / "checkpoints"), *TINY, "--display_id", "0", "--use_wandb"],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, **env}, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    folder = tmp_path / "checkpoints" / "wb"
    assert (folder / "latest_net_G.pth").is_file() and len(logged_losses(folder)) == 2
    [warning] = [line for line in (folder / "train.log").read_text().splitlines() if " WARNING " in line]
    assert "--use_wandb: W&B could not start (" in warning and "training goes on without it" in warning
    assert "no-such-mode" in warning


def wandb_options(tmp_path: Path):
    return TrainOptions().parse(["--checkpoints_dir", str(tmp_path), "--name", "wb", "--display_id", "0",
                                 "--use_wandb"], save=False)


def test_wandb_that_cannot_be_imported_is_reported_once(tmp_path, monkeypatch, caplog):
    import torch

    from util.visualizer import Visualizer

    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    with caplog.at_level(logging.WARNING, logger="util.visualizer"):
        visualizer = Visualizer(wandb_options(tmp_path))
        visualizer.plot_current_losses(0.5, {"G": 1.0}, step=1)
        visualizer.display_current_results({"fake_B": torch.zeros(1, 1, 8, 8)}, epoch=1, step=1)
        visualizer.close()
    assert visualizer.wandb_run is None
    assert [record.getMessage() for record in caplog.records] == [
        "--use_wandb: the wandb package cannot be imported, so training goes on without W&B; install it with "
        "'pip install -r requirements.txt'"]


def test_wandb_failing_mid_run_is_reported_once_and_dropped(tmp_path, monkeypatch, caplog):
    import torch

    import util.visualizer
    from util.visualizer import Visualizer

    class BrokenRun:
        """A W&B run whose service died: every call fails."""

        calls = 0

        def log(self, *args, **kwargs):
            BrokenRun.calls += 1
            raise ConnectionResetError("wandb service is gone")

        def finish(self):
            raise ConnectionResetError("wandb service is gone")

    monkeypatch.setattr(util.visualizer, "start_wandb", lambda opt, run_dir: BrokenRun())
    with caplog.at_level(logging.WARNING, logger="util.visualizer"):
        visualizer = Visualizer(wandb_options(tmp_path))
        for step in range(3):
            visualizer.plot_current_losses(step / 3, {"G": 1.0}, step=step)
            visualizer.plot_validation(1, {"psnr": 20.0}, step=step)
            visualizer.display_current_results({"fake_B": torch.zeros(1, 1, 8, 8)}, epoch=1, step=step)
        visualizer.close()
    assert BrokenRun.calls == 1 and visualizer.wandb_run is None
    assert [record.getMessage() for record in caplog.records] == [
        "W&B logging failed (wandb service is gone); training goes on without W&B"]
