"""Model registry: ``--model X`` loads class ``XModel`` from ``models/X_model.py``."""
from __future__ import annotations

import argparse
from pathlib import Path

from util.registry import available_names, find_class

_PACKAGE_DIR = Path(__file__).resolve().parent


def available_models() -> list[str]:
    return available_names(_PACKAGE_DIR, "model")


def find_model_class(name: str) -> type:
    from models.base_model import BaseModel

    return find_class(__name__, _PACKAGE_DIR, name, "model", BaseModel, "--model")


def create_model(opt: argparse.Namespace):
    """Instantiate the model chosen by ``opt.model`` (call ``setup`` on it before use)."""
    return find_model_class(opt.model)(opt)
