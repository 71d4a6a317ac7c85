"""Dataset registry and data loading.

``--dataset_mode X`` loads class ``XDataset`` from ``data/X_dataset.py``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from util.registry import available_names, find_class

_PACKAGE_DIR = Path(__file__).resolve().parent
# The framework's built-in dataset, for dataset classes that do not name their own
# (a class may set ``default_dataroot`` and an ``ensure_default_data(root)`` classmethod).
DEFAULT_DATAROOT = "./datasets/synthetic_v2ir"


def available_datasets() -> list[str]:
    return available_names(_PACKAGE_DIR, "dataset")


def find_dataset_class(name: str) -> type:
    from data.base_dataset import BaseDataset

    return find_class(__name__, _PACKAGE_DIR, name, "dataset", BaseDataset, "--dataset_mode")


def default_dataroot(dataset_mode: str) -> str:
    """The dataset root used without ``--dataroot``: the class's ``default_dataroot``, else
    the synthetic visible/infrared dataset."""
    return getattr(find_dataset_class(dataset_mode), "default_dataroot", DEFAULT_DATAROOT)


def _ensure_synthetic_v2ir(root: str) -> None:
    from data.offline.synthetic_v2ir import ensure_synthetic_dataset

    ensure_synthetic_dataset(root, workers=os.cpu_count() or 1)


def create_dataset(opt: argparse.Namespace, phase: str):
    """Instantiate the dataset chosen by ``opt.dataset_mode`` for the split ``phase``.

    Without ``--dataroot`` the class's built-in data is used, generated on first use by its
    ``ensure_default_data(root)`` classmethod (default: the synthetic visible/infrared dataset).
    """
    dataset_class = find_dataset_class(opt.dataset_mode)
    if getattr(opt, "dataroot_is_default", False):
        getattr(dataset_class, "ensure_default_data", _ensure_synthetic_v2ir)(opt.dataroot)
    return dataset_class(opt, phase)
