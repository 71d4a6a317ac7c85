"""DataLoader construction with a resumable, epoch-aware sampling order."""
from __future__ import annotations

import argparse
import atexit
import math
import multiprocessing
import signal
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Sampler, default_collate

from data.base_dataset import BaseDataset
from util import distributed


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` keys in an order fixed by (seed, epoch).

    Because the order and each sample's augmentation depend only on the seed and the epoch,
    a run resumed in the middle of an epoch can skip exactly the samples already seen.

    With ``world_size`` processes (torchrun), process ``rank`` takes every ``world_size``-th
    key of the epoch's order, as ``DistributedSampler`` does; the order is first padded with
    its own beginning to a multiple of ``world_size``, so every process runs the same number
    of steps (their gradient averaging would wait forever otherwise).
    """

    def __init__(self, size: int, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch to iterate and how many of this process's first samples to skip."""
        self.epoch, self.skip = epoch, skip

    def order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.size, generator=generator).tolist()

    def shard(self) -> list[int]:
        """This process's part of the epoch's order."""
        order = self.order()
        padded = order + order[:self.per_process() * self.world_size - self.size]
        return padded[self.rank::self.world_size]

    def per_process(self) -> int:
        return math.ceil(self.size / self.world_size)

    def __iter__(self):
        return iter([(self.epoch, index) for index in self.shard()[self.skip:]])

    def __len__(self) -> int:
        return max(self.per_process() - self.skip, 0)


def _init_worker(_worker_id: int) -> None:
    # Workers only decode and crop; letting each use every core would starve the model.
    torch.set_num_threads(1)
    # Ctrl-C reaches the whole process group: workers must not die of it while the main
    # process finishes its step and saves the 'interrupted' checkpoint (util/interrupts.py).
    # They still end with the main process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _kill_loader_workers() -> None:
    # At exit multiprocessing ends daemonic children (the loader workers) with SIGTERM and waits
    # for them; workers ignore SIGTERM (above), so when an error leaves a loader iterator alive
    # that wait never ends. Killing them first lets the process exit at once: they only read data.
    # PyTorch's SIGCHLD handler would report the first killed worker as an error mid-loop.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    workers = [child for child in multiprocessing.active_children() if child.daemon]
    for worker in workers:
        worker.kill()
    for worker in workers:
        worker.join(timeout=5)


# atexit runs handlers last-registered first: this one runs before multiprocessing's own.
atexit.register(_kill_loader_workers)


def create_train_loader(dataset: BaseDataset, opt: argparse.Namespace) -> tuple[DataLoader, EpochSampler]:
    sampler = EpochSampler(len(dataset), shuffle=not opt.serial_batches, seed=opt.seed,
                           rank=distributed.rank(), world_size=distributed.world_size())
    loader = DataLoader(
        dataset,
        batch_size=opt.batch_size,
        sampler=sampler,
        num_workers=opt.num_threads,
        persistent_workers=opt.num_threads > 0,
        pin_memory=str(opt.device).startswith("cuda"),
        worker_init_fn=_init_worker,
        drop_last=False,
        # Its own generator: creating an iterator must not advance the global RNG, which
        # dropout draws from and which a resumed run restores.
        generator=torch.Generator().manual_seed(opt.seed),
    )
    return loader, sampler


class SizeGroupedBatches:
    """Batches of up to ``batch_size`` consecutive samples whose tensors have equal shapes.

    Evaluation images may differ in size (``--preprocess none``, super-resolution test
    sets), and only equal sizes stack into one batch: a new batch starts whenever the size
    changes, so order is kept and any mix of sizes works.
    """

    def __init__(self, samples: DataLoader, batch_size: int) -> None:
        self.samples, self.batch_size = samples, batch_size

    @staticmethod
    def _shapes(sample: dict) -> dict[str, tuple[int, ...]]:
        return {key: tuple(value.shape) for key, value in sample.items() if isinstance(value, torch.Tensor)}

    def __iter__(self) -> Iterator[dict]:
        pending: list[dict] = []
        for sample in self.samples:
            if pending and self._shapes(sample) != self._shapes(pending[0]):
                yield default_collate(pending)
                pending = []
            pending.append(sample)
            if len(pending) == self.batch_size:
                yield default_collate(pending)
                pending = []
        if pending:
            yield default_collate(pending)


def create_eval_loader(dataset: BaseDataset, opt: argparse.Namespace,
                       limit: int | None = None) -> DataLoader | SizeGroupedBatches:
    """In-order batches of at most ``limit`` samples, without augmentation.

    With ``--batch_size`` > 1, workers load single samples and batches are formed from
    consecutive samples of equal size (``SizeGroupedBatches``).
    """
    indices = range(min(len(dataset), limit if limit is not None else len(dataset)))
    grouped = opt.batch_size > 1
    loader = DataLoader(
        torch.utils.data.Subset(dataset, list(indices)),
        batch_size=None if grouped else 1,  # None: single samples, not batches
        shuffle=False,
        num_workers=min(opt.num_threads, 2),
        pin_memory=str(opt.device).startswith("cuda") and not grouped,  # stacking copies into unpinned memory
        worker_init_fn=_init_worker,
        generator=torch.Generator().manual_seed(opt.seed),
    )
    return SizeGroupedBatches(loader, opt.batch_size) if grouped else loader
