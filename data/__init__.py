"""Dataset registry and data loading.

``--dataset_mode X`` loads class ``XDataset`` from ``data/X_dataset.py``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from util.registry import available_names, find_class

_PACKAGE_DIR = Path(__file__).resolve().parent


def available_datasets() -> list[str]:
    return available_names(_PACKAGE_DIR, "dataset")


def find_dataset_class(name: str) -> type:
    from data.base_dataset import BaseDataset

    return find_class(__name__, _PACKAGE_DIR, name, "dataset", BaseDataset, "--dataset_mode")


def create_dataset(opt: argparse.Namespace, phase: str):
    """Instantiate the dataset chosen by ``opt.dataset_mode`` for the split ``phase``.

    Without ``--dataroot`` the built-in synthetic dataset is used, generated on first use.
    """
    if getattr(opt, "dataroot_is_default", False):
        from data.synthetic_v2ir import ensure_synthetic_dataset

        ensure_synthetic_dataset(opt.dataroot, workers=os.cpu_count() or 1)
    return find_dataset_class(opt.dataset_mode)(opt, phase)
