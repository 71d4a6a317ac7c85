"""DataLoader construction with a resumable, epoch-aware sampling order."""
from __future__ import annotations

import argparse

import torch
from torch.utils.data import DataLoader, Sampler

from data.base_dataset import BaseDataset


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` keys in an order fixed by (seed, epoch).

    Because the order and each sample's augmentation depend only on the seed and the epoch,
    a run resumed in the middle of an epoch can skip exactly the samples already seen.
    """

    def __init__(self, size: int, shuffle: bool, seed: int) -> None:
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch to iterate and how many of its first samples to skip."""
        self.epoch, self.skip = epoch, skip

    def order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.size, generator=generator).tolist()

    def __iter__(self):
        return iter([(self.epoch, index) for index in self.order()[self.skip:]])

    def __len__(self) -> int:
        return max(self.size - self.skip, 0)


def _limit_worker_threads(_worker_id: int) -> None:
    # Workers only decode and crop; letting each use every core would starve the model.
    torch.set_num_threads(1)


def create_train_loader(dataset: BaseDataset, opt: argparse.Namespace) -> tuple[DataLoader, EpochSampler]:
    sampler = EpochSampler(len(dataset), shuffle=not opt.serial_batches, seed=opt.seed)
    loader = DataLoader(
        dataset,
        batch_size=opt.batch_size,
        sampler=sampler,
        num_workers=opt.num_threads,
        persistent_workers=opt.num_threads > 0,
        pin_memory=str(opt.device).startswith("cuda"),
        worker_init_fn=_limit_worker_threads,
        drop_last=False,
        # Its own generator: creating an iterator must not advance the global RNG, which
        # dropout draws from and which a resumed run restores.
        generator=torch.Generator().manual_seed(opt.seed),
    )
    return loader, sampler


def create_eval_loader(dataset: BaseDataset, opt: argparse.Namespace, limit: int | None = None) -> DataLoader:
    """In-order loader over at most ``limit`` samples, without augmentation."""
    indices = range(min(len(dataset), limit if limit is not None else len(dataset)))
    return DataLoader(
        torch.utils.data.Subset(dataset, list(indices)),
        batch_size=opt.batch_size,
        shuffle=False,
        num_workers=min(opt.num_threads, 2),
        pin_memory=str(opt.device).startswith("cuda"),
        worker_init_fn=_limit_worker_threads,
        generator=torch.Generator().manual_seed(opt.seed),
    )
