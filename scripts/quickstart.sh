#!/usr/bin/env bash
# The README's main job: train pix2pix (visible -> infrared) briefly on the built-in synthetic
# dataset (generated on first use), test it, and print the per-image metrics table.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
# The visdom page's JS/CSS files are not in the visdom wheel; fetch them from npm once. Optional:
# without them (or without a visdom server) training warns once and carries on.
if ! "$PYTHON" scripts/install_visdom_assets.py --check >/dev/null 2>&1; then
    if command -v npm >/dev/null; then
        "$PYTHON" scripts/install_visdom_assets.py || echo "note: the visdom page's files were not installed (training is unaffected)"
    else
        echo "note: npm not found, so the visdom page's files were not installed (training is unaffected; see docs/usage.md, Installation)"
    fi
fi
"$PYTHON" train.py --model pix2pix --direction BtoA --n_epochs 1 --n_epochs_decay 1
"$PYTHON" test.py --model pix2pix --direction BtoA
