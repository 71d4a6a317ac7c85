"""Offline data tools, run before training rather than by it: the dataset converters
(``preparation.py``, behind ``scripts/prepare_*.py`` and ``scripts/pair_folders.py``), the dataset
checker (``dataset_check.py``, behind ``scripts/check_dataset.py``) and the synthetic dataset
renderers (``synthetic_v2ir.py``, ``synthetic_sr.py``).

Runtime loading (datasets, transforms, degradations, image I/O) lives in ``data/`` and never
imports this package at import time; the one call into it is ``create_dataset`` generating the
built-in synthetic dataset on first use (``--dataroot`` not given). The folder-pairing rules both
sides use are ``data/layout.py``.
"""
