"""Multi-process training with ``torchrun``: the process group and rank-aware helpers.

``torchrun --nproc_per_node N train.py ...`` starts N processes and sets ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE``; :func:`init_from_environment` joins them into one
process group (NCCL on CUDA, gloo on CPU) and gives each process its own GPU. A plain
``python train.py`` is a world of one, and every helper here is then a no-op.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
from typing import Iterator, Mapping

import torch
import torch.distributed as dist
import torch.nn as nn

from util.checkpoint import state_dict_digest
from util.errors import UserError

logger = logging.getLogger(__name__)


def environment_rank() -> int:
    """This process's rank as torchrun announced it (0 without torchrun), usable before
    the process group exists (for example to let only rank 0 write the options file)."""
    return int(os.environ.get("RANK", "0"))


def environment_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_environment(opt: argparse.Namespace) -> None:
    """Join the torchrun process group when there is more than one process.

    On CUDA each process drives ``cuda:LOCAL_RANK`` (``opt.device`` is updated); on CPU all
    processes share the CPU, so give each of them ``OMP_NUM_THREADS`` = cores / processes.
    """
    world_size = environment_world_size()
    if world_size <= 1 or dist.is_initialized():
        return
    device = torch.device(opt.device)
    if device.type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if local_rank >= torch.cuda.device_count():
            raise UserError(f"torchrun started process {local_rank} on a node with {torch.cuda.device_count()} "
                            f"GPUs: use --nproc_per_node {torch.cuda.device_count()} or fewer")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        opt.device = str(device)
    if getattr(opt, "sync_bn", False) and device.type != "cuda":
        raise UserError("--sync_bn (or --norm syncbatch) needs CUDA devices: PyTorch's SyncBatchNorm does not run "
                        "on the CPU. Use --norm batch without --sync_bn for CPU runs")
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Rank 0, the process that logs, validates, shows visuals and writes checkpoints."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first, then the others (for example to generate built-in data
    once instead of in every process at the same time)."""
    if not is_main_process():
        barrier()
    yield
    if is_main_process():
        barrier()


def broadcast_float(value: float, device: torch.device) -> float:
    """Rank 0's ``value`` on every rank (for example a validation metric that decides the
    learning rate, which must change identically everywhere)."""
    if not is_distributed():
        return value
    backend_device = device if dist.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.tensor([value], dtype=torch.float64, device=backend_device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def parameter_digests(networks: Mapping[str, nn.Module]) -> dict[str, str]:
    """A content hash of each network's parameters (not its buffers: batch-norm running
    statistics follow each process's own images unless ``--sync_bn``)."""
    return {name: state_dict_digest({key: value.detach() for key, value in net.named_parameters()})
            for name, net in networks.items()}


def check_replicas(networks: Mapping[str, nn.Module]) -> None:
    """Under torchrun, verify that every process holds the same parameters and log their digests.

    Data-parallel training keeps the replicas identical by averaging gradients; a difference
    means a network was updated outside that path, so it is reported as an error.
    """
    if not is_distributed():
        return
    digests = parameter_digests(networks)
    gathered: list[dict[str, str] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, digests)
    differing = sorted(name for name in digests if any(other[name] != digests[name] for other in gathered))
    if differing:
        raise RuntimeError(f"the processes ended with different weights for network(s) {', '.join(differing)}")
    logger.info("all %d processes hold identical weights; parameter digests: %s", len(gathered),
                " ".join(f"{name}={digest}" for name, digest in digests.items()))


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
