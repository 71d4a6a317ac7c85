"""``loss_log.txt``: one line per logging step, readable by people and by plotting tools."""
from __future__ import annotations

import time
from pathlib import Path


class LossLog:
    """Appends lines like ``(epoch: 3, iters: 200, time: 0.412, data: 0.003) G_GAN: 0.71 G_L1: 9.2``.

    ``time`` is seconds of computation per image and ``data`` seconds spent waiting for
    the data loader per image, both averaged since the previous line.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            handle.write(f"================ Training Loss ({time.strftime('%c')}) ================\n")

    @staticmethod
    def format(epoch: int, iters: int, compute_time: float, data_time: float, losses: dict[str, float]) -> str:
        values = " ".join(f"{name}: {value:.4f}" for name, value in losses.items())
        return f"(epoch: {epoch}, iters: {iters}, time: {compute_time:.4f}, data: {data_time:.4f}) {values}"

    def write(self, line: str) -> None:
        with open(self.path, "a") as handle:
            handle.write(line + "\n")
