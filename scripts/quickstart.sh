#!/usr/bin/env bash
# The README's main job: train pix2pix (visible -> infrared) briefly on the built-in synthetic
# dataset (generated on first use), test it, and print the per-image metrics table.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
"$PYTHON" train.py --model pix2pix --direction BtoA --n_epochs 1 --n_epochs_decay 1
"$PYTHON" test.py --model pix2pix --direction BtoA
