"""Load RRDB-family generator checkpoints written by other projects, by renaming their keys.

Our generators use BasicSR's ``RRDBNet`` names (``conv_first``, ``body.{i}.rdb{j}.conv{k}``,
``conv_body``, ``conv_up{n}``, ``conv_hr``, ``conv_last``) plus ``body.{i}.fuse`` for the CRDB's
1x1 convs. Recognised files:

* ours: a plain state dict (``<tag>_net_G.pth``, ``<tag>_net_G_ema.pth``);
* BasicSR / Real-ESRGAN: ``{"params": ..., "params_ema": ...}`` (``params_ema`` preferred), same keys;
* IRSRGAN (the seed repository): ``{"state_dict": ..., "ema_state_dict": ...}`` with keys
  ``initial``, ``residuals.{i}.rrdb.{j}.blocks.{k}.cnn``, ``residuals.{i}.conv``, ``conv``,
  ``upsamples.{n}.conv``, ``final.0``, ``final.2`` (748 keys for the released x4 model).
  ``state_dict`` is used: its ``ema_state_dict`` comes from an inverted EMA formula and is
  practically the same weights;
* the original ESRGAN repository: ``RRDB_trunk.{i}.RDB{j}.conv{k}``, ``trunk_conv``,
  ``upconv1/2``, ``HRconv``.

Files of other projects were trained on [0, 1] images (this project feeds [-1, 1]): they are
read with the ``value_range`` buffer (0, 1) added, so the generator maps its input and output
(``models/networks/sr_common.py``); saving the network and ``net_interp.py`` keep the buffer.
Our own files carry their buffers (files from before them: (-1, 1), no bicubic residual).

A 3-channel checkpoint loads into a 1-channel generator (and the reverse) exactly as the
project converts images: a grey input is the colour image's BT.601 luma, a grey input given to
a colour network is the same value in all three channels; see :func:`adapt_channels`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn

from models.networks.sr_common import FOREIGN_RANGE, PROJECT_RANGE, legacy_conventions
from util.checkpoint import _strip_wrapper_prefixes, safe_load
from util.errors import UserError

LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # BT.601, as util.image_io.convert_channels

# (pattern, replacement) pairs applied to every key of a layout; the first match wins.
_RENAMES: dict[str, list[tuple[re.Pattern, object]]] = {
    "irsrgan": [
        (re.compile(r"^initial\."), "conv_first."),
        (re.compile(r"^residuals\.(\d+)\.rrdb\.(\d+)\.blocks\.(\d+)\.cnn\."),
         lambda m: f"body.{m[1]}.rdb{int(m[2]) + 1}.conv{int(m[3]) + 1}."),
        (re.compile(r"^residuals\.(\d+)\.conv\."), r"body.\1.fuse."),
        (re.compile(r"^conv\."), "conv_body."),
        (re.compile(r"^upsamples\.(\d+)\.conv\."), lambda m: f"conv_up{int(m[1]) + 1}."),
        (re.compile(r"^final\.0\."), "conv_hr."),
        (re.compile(r"^final\.2\."), "conv_last."),
    ],
    "esrgan": [
        (re.compile(r"^RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\."), r"body.\1.rdb\2.conv\3."),
        (re.compile(r"^trunk_conv\."), "conv_body."),
        (re.compile(r"^upconv(\d)\."), r"conv_up\1."),
        (re.compile(r"^HRconv\."), "conv_hr."),
    ],
    "ours": [],
}
LAYOUTS = ("ours (also BasicSR/Real-ESRGAN)", "irsrgan", "esrgan")


def extract_state_dict(loaded: object, path: str | Path, prefer_ema: bool = True) -> dict[str, torch.Tensor]:
    """The generator's state dict inside a loaded checkpoint file, whatever the container."""
    if isinstance(loaded, Mapping):
        if all(isinstance(value, torch.Tensor) for value in loaded.values()):
            return {_strip_wrapper_prefixes(key): value for key, value in loaded.items()
                    if key != "n_averaged"}  # AveragedModel's counter
        if "params" in loaded or "params_ema" in loaded:  # BasicSR
            key = "params_ema" if prefer_ema and "params_ema" in loaded else "params"
            return extract_state_dict(loaded[key], path, prefer_ema)
        if "state_dict" in loaded:  # IRSRGAN / Lornatang training checkpoints
            return extract_state_dict(loaded["state_dict"], path, prefer_ema)
    raise UserError(f"{path} holds no generator state dict (expected a plain state dict, BasicSR's "
                    f"'params'/'params_ema' or IRSRGAN's 'state_dict')")


def detect_layout(state_dict: Mapping[str, torch.Tensor], path: str | Path) -> str:
    if "initial.weight" in state_dict and any(key.startswith("residuals.") for key in state_dict):
        return "irsrgan"
    if any(key.startswith("RRDB_trunk.") for key in state_dict):
        return "esrgan"
    if "conv_first.weight" in state_dict and "conv_last.weight" in state_dict:
        return "ours"
    first = ", ".join(list(state_dict)[:4])
    raise UserError(f"{path} is not an RRDB/CRDB generator checkpoint of a known layout (first keys: {first}); "
                    f"supported layouts: {', '.join(LAYOUTS)}")


def to_our_keys(state_dict: Mapping[str, torch.Tensor], layout: str) -> dict[str, torch.Tensor]:
    renamed = {}
    for key, value in state_dict.items():
        for pattern, replacement in _RENAMES[layout]:
            new_key, count = pattern.subn(replacement, key, count=1)
            if count:
                key = new_key
                break
        renamed[key] = value
    return renamed


def read_generator_state(path: str | Path, prefer_ema: bool = True) -> tuple[dict[str, torch.Tensor], str]:
    """A generator checkpoint of any recognised layout, with our keys and its recorded conventions
    (value range, bicubic residual), and the layout's name."""
    loaded = safe_load(path)
    state_dict = extract_state_dict(loaded, path, prefer_ema)
    layout = detect_layout(state_dict, path)
    basicsr = isinstance(loaded, Mapping) and ("params" in loaded or "params_ema" in loaded)
    trained_range = FOREIGN_RANGE if basicsr or layout != "ours" else PROJECT_RANGE
    return {**legacy_conventions(trained_range), **to_our_keys(state_dict, layout)}, layout


def adapt_channels(
    state_dict: dict[str, torch.Tensor], in_nc: int, out_nc: int, unshuffle: int
) -> dict[str, torch.Tensor]:
    """Convert the first conv's input channels and the last conv's output channels between 1 and 3.

    Input 3 -> 1: the grey image copied to RGB gives ``sum_c W_c * g``, so the RGB filters are
    summed. Input 1 -> 3: the network then sees the colour image's luma, ``sum_c l_c x_c``.
    Output 3 -> 1: the luma of the colour output. Output 1 -> 3: the grey output copied to RGB.
    ``unshuffle``: channels per image channel at the first conv (BasicSR's x2 pixel-unshuffle).
    """
    adapted = dict(state_dict)
    luma = torch.tensor(LUMA_WEIGHTS)
    first = state_dict.get("conv_first.weight")
    last_weight, last_bias = state_dict.get("conv_last.weight"), state_dict.get("conv_last.bias")
    if first is None or last_weight is None or last_bias is None:
        return adapted  # incomplete: the caller reports the missing keys
    file_in = first.shape[1] // unshuffle
    if file_in != in_nc and {file_in, in_nc} == {1, 3}:
        grouped = first.reshape(first.shape[0], file_in, unshuffle, *first.shape[2:])
        weights = grouped.sum(1, keepdim=True) if in_nc == 1 else grouped * luma.view(1, 3, 1, 1, 1).to(first)
        adapted["conv_first.weight"] = weights.reshape(first.shape[0], in_nc * unshuffle, *first.shape[2:])
    file_out = last_weight.shape[0]
    if file_out != out_nc and {file_out, out_nc} == {1, 3}:
        if out_nc == 1:
            adapted["conv_last.weight"] = torch.einsum("c,cikl->ikl", luma.to(last_weight), last_weight)[None]
            adapted["conv_last.bias"] = (luma.to(last_bias) * last_bias).sum(0, keepdim=True)
        else:
            adapted["conv_last.weight"] = last_weight.repeat(3, 1, 1, 1)
            adapted["conv_last.bias"] = last_bias.repeat(3)
    return adapted


def load_generator_weights(net: nn.Module, path: str | Path, prefer_ema: bool = True) -> str:
    """Load a checkpoint of any recognised layout into an RRDB/CRDB generator; return the layout."""
    state_dict, layout = read_generator_state(path, prefer_ema)
    in_nc = net.conv_first.in_channels // net.unshuffle**2
    state_dict = adapt_channels(state_dict, in_nc, net.conv_last.out_channels, net.unshuffle**2)
    expected = net.state_dict()
    has_fuse = any(key.endswith(".fuse.weight") for key in state_dict)
    wants_fuse = any(key.endswith(".fuse.weight") for key in expected)
    if has_fuse != wants_fuse:
        kind, option = ("a CRDB (IRSRGAN)", "crdb") if has_fuse else ("an RRDB (ESRGAN)", "rrdb")
        raise UserError(f"{path} is {kind} generator: use --netG {option}")
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = sorted(key for key in set(expected) & set(state_dict)
                         if expected[key].shape != state_dict[key].shape)
    if missing or unexpected or wrong_shape:
        blocks = len({key.split(".")[1] for key in state_dict if key.startswith("body.")})
        details = "; ".join(f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                            for label, keys in (("missing", missing), ("unexpected", unexpected),
                                                ("different shape", wrong_shape)) if keys)
        raise UserError(f"{path} ({layout} layout, {blocks} blocks) does not fit the generator as configured "
                        f"({details}); use the --nb/--ngf/--gc/--scale/"
                        f"--input_nc/--output_nc it was trained with")
    net.load_state_dict(state_dict)
    return layout
