"""Training visualisation: visdom (live), Weights & Biases, per-epoch HTML pages, loss-curve PNG.

Nothing here may stop training. visdom connects on first use; when its server cannot be
reached one warning is logged and later attempts happen quietly, at growing intervals.
W&B is started before the first step; when it cannot start (not installed, misconfigured,
not logged in) or a later call fails, one warning says why and training goes on without it.
"""
from __future__ import annotations

import argparse
import functools
import logging
import math
import re
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from PIL import Image

from util.html import HTMLPage
from util.image_io import tensor_to_image, write_image
from util.loss_plot import write_loss_plot

logger = logging.getLogger(__name__)

VISDOM_START_COMMAND = "python -m visdom.server -port {port} -bind_local"
# (connect, read) seconds for one request: an unreachable or hung server costs at most this.
_REQUEST_TIMEOUT = (2.0, 10.0)


@functools.cache
def _visdom_client_class() -> type:
    import visdom

    # visdom logs a warning for every new client ("Setting up a new session...") and for
    # running without the incoming socket; connection state is reported by VisdomDisplay.
    logging.getLogger("visdom").setLevel(logging.ERROR)

    class TimeoutVisdom(visdom.Visdom):
        """visdom's client posts without a timeout; a hung server must not stall training."""

        def _handle_post(self, url: str, data: Any = None) -> str:
            return self.session.post(url, data=data, timeout=_REQUEST_TIMEOUT).text

    return TimeoutVisdom


class VisdomDisplay:
    """A visdom client that training can call at any time.

    It connects on first use. When the server cannot be reached it warns once, then retries
    only every ``retry_seconds`` (doubling up to ``max_retry_seconds``), so an absent server
    costs a refused connection now and then and nothing else.
    """

    def __init__(self, server: str, port: int, env: str, retry_seconds: float = 10.0,
                 max_retry_seconds: float = 300.0) -> None:
        self.server, self.port, self.env = server, port, env
        self.retry_seconds, self.max_retry_seconds = retry_seconds, max_retry_seconds
        self.client: Any = None
        self.connections = 0  # successful (re)connections; windows resend their history after each
        self.attempts = 0
        self._retry_at = 0.0
        self._retry_delay = retry_seconds
        self._warned = False

    @property
    def url(self) -> str:
        return f"{self.server}:{self.port}"

    def connected(self) -> bool:
        """Whether the server is reachable, (re)connecting first when a retry is due."""
        if self.client is not None:
            return True
        if time.monotonic() < self._retry_at:
            return False
        self.attempts += 1
        try:
            client_class = _visdom_client_class()
        except ImportError:
            self._retry_at = math.inf
            logger.warning("visdom is not installed, so there is no live display; install it with "
                           "'pip install -r requirements.txt' or pass --display_id 0")
            return False
        try:
            self.client = client_class(server=self.server, port=self.port, env=self.env, raise_exceptions=True,
                                       use_incoming_socket=False)
        except OSError as error:  # requests' and visdom's connection errors are OSErrors
            self._failed(error, lost=False)
            return False
        self.connections += 1
        self._retry_delay = self.retry_seconds
        logger.info("visdom: live display at %s/env/%s", self.url, self.env)
        return True

    def call(self, method: str, **kwargs: Any) -> bool:
        """``client.<method>(**kwargs)``; False, and disconnected, when the server has gone."""
        if not self.connected():
            return False
        try:
            getattr(self.client, method)(**kwargs)
        except OSError as error:
            self.client = None
            self._failed(error, lost=True)
            return False
        return True

    def _failed(self, error: OSError, lost: bool) -> None:
        """Schedule the next attempt; only the first failure warns, and losing a live server is noted."""
        if not self._warned:
            self._warned = True
            logger.warning(
                "visdom server %s is not reachable (%s); training continues without the live display and "
                "retries quietly. Start a server with '%s' or turn the display off with --display_id 0",
                self.url, error, VISDOM_START_COMMAND.format(port=self.port))
        elif lost:
            logger.info("visdom: lost the connection to %s; retrying quietly", self.url)
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(2 * self._retry_delay, self.max_retry_seconds)


class LineWindow:
    """A visdom line plot of named series against one x value.

    The whole history stays in memory: a freshly (re)connected server receives all of it,
    and afterwards only the new points are appended.
    """

    def __init__(self, win: str, title: str, xlabel: str, ylabel: str) -> None:
        self.win = win
        self.opts: dict[str, Any] = {"title": title, "xlabel": xlabel, "ylabel": ylabel}
        self.legend: list[str] = []
        self.x: list[float] = []
        self.rows: list[list[float]] = []
        self._sent_points, self._sent_connection = 0, 0

    def add(self, x: float, values: Mapping[str, float], display: VisdomDisplay) -> None:
        if not self.legend:
            self.legend = list(values)
        self.x.append(x)
        self.rows.append([values.get(name, math.nan) for name in self.legend])
        if not display.connected():
            return
        resend = self._sent_connection != display.connections
        start = 0 if resend else self._sent_points
        xs = np.repeat(np.array(self.x[start:], dtype=np.float64)[:, None], len(self.legend), axis=1)
        if display.call("line", X=xs, Y=np.array(self.rows[start:], dtype=np.float64), win=self.win,
                        update=None if resend else "append", opts={**self.opts, "legend": self.legend}):
            self._sent_points, self._sent_connection = len(self.x), display.connections


class EpochPages:
    """``web/index.html``: one row of the current visuals per epoch, newest first.

    Images are saved as ``web/images/epoch<NNN>_<visual>.png`` (overwritten within an epoch);
    the page is rebuilt from the files present, so it lists exactly the images that exist.
    """

    _FILE = re.compile(r"^epoch(\d+)_(.+)\.png$")

    def __init__(self, web_dir: Path, title: str, width: int) -> None:
        self.web_dir, self.title, self.width = web_dir, title, width
        self.visual_order: list[str] = []

    def save(self, images: Mapping[str, np.ndarray], epoch: int) -> Path:
        self.visual_order = list(images)
        for name, array in images.items():
            write_image(self.web_dir / "images" / f"epoch{epoch:03d}_{name}.png", array)
        return self.write_index()

    def write_index(self) -> Path:
        by_epoch: dict[int, list[str]] = {}
        for path in (self.web_dir / "images").glob("epoch*_*.png"):
            match = self._FILE.match(path.name)
            if match:
                by_epoch.setdefault(int(match.group(1)), []).append(match.group(2))
        order = {name: index for index, name in enumerate(self.visual_order)}
        page = HTMLPage(self.web_dir, self.title)
        for epoch in sorted(by_epoch, reverse=True):
            names = sorted(by_epoch[epoch], key=lambda name: (order.get(name, len(order)), name))
            page.add_header(f"epoch {epoch}")
            page.add_images([f"epoch{epoch:03d}_{name}.png" for name in names], names, width=self.width)
        return page.save()


def _display_grid(images: Mapping[str, np.ndarray]) -> np.ndarray:
    """``N x 3 x H x W`` floats in [0, 1] for visdom: grey replicated, all scaled to the largest size.

    Floats, because visdom multiplies images whose maximum is at most 1 by 255.
    """
    height = max(array.shape[0] for array in images.values())
    width = max(array.shape[1] for array in images.values())
    grid = []
    for array in images.values():
        rgb = array if array.ndim == 3 else np.repeat(array[..., None], 3, axis=2)
        if rgb.shape[:2] != (height, width):  # e.g. a low-resolution input beside its super-resolved output
            rgb = np.asarray(Image.fromarray(rgb).resize((width, height), Image.NEAREST))
        grid.append(rgb.transpose(2, 0, 1).astype(np.float32) / 255.0)
    return np.stack(grid)


def start_wandb(opt: argparse.Namespace, run_dir: Path) -> Any:
    """Start a W&B run named after the experiment (``WANDB_MODE=offline`` logs locally), or
    warn and return None when W&B cannot start."""
    try:
        import wandb
    except ImportError:
        logger.warning("--use_wandb: the wandb package cannot be imported, so training goes on without W&B; "
                       "install it with 'pip install -r requirements.txt'")
        return None
    try:
        return wandb.init(project=opt.wandb_project_name, name=opt.name, config=vars(opt), dir=run_dir)
    except Exception as error:  # wandb raises its own types for login, network and settings problems
        logger.warning("--use_wandb: W&B could not start (%s), so training goes on without it. Log in with "
                       "'wandb login', or set WANDB_MODE=offline to log into %s and upload later with 'wandb sync'",
                       " ".join(str(error).split()), run_dir / "wandb")
        return None


class Visualizer:
    """Everything training shows besides ``loss_log.txt``; each output is optional.

    visdom (``--display_id`` > 0), W&B (``--use_wandb``), HTML pages (unless ``--no_html``) and
    ``loss_curves.png`` (always). Methods convert tensors (a device synchronisation) only
    when some output will use them.
    """

    def __init__(self, opt: argparse.Namespace) -> None:
        self.name, self.ncols = opt.name, opt.display_ncols
        self.save_dir = Path(opt.checkpoints_dir) / opt.name
        self.display = None
        if opt.display_id > 0:
            self.display = VisdomDisplay(opt.display_server, opt.display_port, opt.display_env or opt.name)
        window = str(opt.display_id)
        self.images_window = f"{window}_images"
        self.loss_window = LineWindow(f"{window}_losses", f"{opt.name} losses", "epoch", "loss")
        self.validation_window = LineWindow(f"{window}_validation", f"{opt.name} validation", "epoch", "value")
        self.pages = None if opt.no_html else EpochPages(self.save_dir / "web", f"Experiment {opt.name}",
                                                         opt.display_winsize)
        self.wandb_run = start_wandb(opt, self.save_dir) if opt.use_wandb else None

    def _wants_display(self) -> bool:
        return self.display is not None and self.display.connected()

    def display_current_results(self, visuals: Mapping[str, torch.Tensor], epoch: int, step: int) -> None:
        """Show the first image of each visual in visdom and W&B."""
        show = self._wants_display()
        if not show and self.wandb_run is None:
            return
        images = {name: tensor_to_image(tensor[0]) for name, tensor in visuals.items()}
        if show:
            title = f"{self.name} epoch {epoch}: {' | '.join(images)}"
            grid = _display_grid(images)
            if self.ncols > 0:
                self.display.call("images", tensor=grid, nrow=self.ncols, win=self.images_window,
                                  opts={"title": title})
            else:
                for name, image in zip(images, grid):
                    self.display.call("image", img=image, win=f"{self.images_window}_{name}",
                                      opts={"title": f"{name} (epoch {epoch})"})
        if self.wandb_run is not None:
            import wandb

            self._wandb_log(lambda: {f"visuals/{name}": wandb.Image(image, caption=name)
                                     for name, image in images.items()}, step)

    def save_html(self, visuals: Mapping[str, torch.Tensor], epoch: int) -> None:
        """Save the first image of each visual as this epoch's row of ``web/index.html``."""
        if self.pages is not None:
            self.pages.save({name: tensor_to_image(tensor[0]) for name, tensor in visuals.items()}, epoch)

    def plot_current_losses(self, epoch_progress: float, losses: Mapping[str, float], step: int) -> None:
        """Losses against fractional epoch (``epoch - 1 + batches done / batches per epoch``)."""
        if self.display is not None:
            self.loss_window.add(epoch_progress, losses, self.display)
        self._wandb_log(lambda: {**{f"loss/{name}": value for name, value in losses.items()}, "epoch": epoch_progress},
                        step)

    def plot_validation(self, epoch: int, metrics: Mapping[str, float], step: int) -> None:
        if self.display is not None:
            self.validation_window.add(float(epoch), metrics, self.display)
        self._wandb_log(lambda: {**{f"val/{name}": value for name, value in metrics.items()}, "epoch": float(epoch)},
                        step)

    def _wandb_log(self, record: Callable[[], dict[str, Any]], step: int) -> None:
        """``run.log(record(), step)``; the first failure is reported and W&B is left off."""
        if self.wandb_run is None:
            return
        try:
            self.wandb_run.log(record(), step=step)
        except Exception as error:  # wandb's own error types: service, network, disk
            logger.warning("W&B logging failed (%s); training goes on without W&B", error)
            self.wandb_run = None

    def write_loss_plot(self) -> None:
        """Redraw ``loss_curves.png`` from ``loss_log.txt`` (once per epoch)."""
        log = self.save_dir / "loss_log.txt"
        if log.is_file():
            write_loss_plot(log, self.save_dir / "loss_curves.png", f"{self.name} losses")

    def close(self) -> None:
        if self.wandb_run is not None:
            try:
                self.wandb_run.finish()
            except Exception as error:  # the run's files are already written; nothing to stop for
                logger.warning("W&B could not finish the run cleanly (%s)", error)
            self.wandb_run = None
