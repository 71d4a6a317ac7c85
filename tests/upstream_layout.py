"""Upstream pix2pix ``state_dict`` layouts, written from the documented key scheme.

Independent of this project's module code on purpose: a test that builds a checkpoint
from these keys and loads it proves that files written by upstream load unchanged.
"""
from __future__ import annotations

import torch

Shape = tuple[int, ...]


def _batch_norm(prefix: str, channels: int) -> dict[str, Shape]:
    return {f"{prefix}.weight": (channels,), f"{prefix}.bias": (channels,), f"{prefix}.running_mean": (channels,),
            f"{prefix}.running_var": (channels,), f"{prefix}.num_batches_tracked": ()}


def unet_keys(num_downs: int, input_nc: int, output_nc: int, ngf: int = 64) -> dict[str, Shape]:
    """Batch-norm U-Net: outermost ``[down, sub, relu, upT, tanh]``, intermediate
    ``[lrelu, down, norm, sub, relu, upT, norm]``, innermost ``[lrelu, down, relu, upT, norm]``."""
    outer_channels = [ngf, ngf * 2, ngf * 4] + [ngf * 8] * (num_downs - 3)  # output channels of each down conv
    keys = {"model.model.0.weight": (ngf, input_nc, 4, 4),
            "model.model.3.weight": (ngf * 2, output_nc, 4, 4), "model.model.3.bias": (output_nc,)}
    prefix = "model.model.1.model"
    for level in range(1, num_downs):
        outer, inner = outer_channels[level - 1], outer_channels[level]
        keys[f"{prefix}.1.weight"] = (inner, outer, 4, 4)
        if level == num_downs - 1:  # innermost
            keys[f"{prefix}.3.weight"] = (inner, outer, 4, 4)
            keys.update(_batch_norm(f"{prefix}.4", outer))
        else:
            keys.update(_batch_norm(f"{prefix}.2", inner))
            keys[f"{prefix}.5.weight"] = (inner * 2, outer, 4, 4)
            keys.update(_batch_norm(f"{prefix}.6", outer))
            prefix = f"{prefix}.3.model"
    return keys


def basic_discriminator_keys(input_nc: int, ndf: int = 64) -> dict[str, Shape]:
    keys = {"model.0.weight": (ndf, input_nc, 4, 4), "model.0.bias": (ndf,)}
    for conv_index, (cin, cout) in zip((2, 5, 8), ((ndf, ndf * 2), (ndf * 2, ndf * 4), (ndf * 4, ndf * 8))):
        keys[f"model.{conv_index}.weight"] = (cout, cin, 4, 4)
        keys.update(_batch_norm(f"model.{conv_index + 1}", cout))
    keys.update({"model.11.weight": (1, ndf * 8, 4, 4), "model.11.bias": (1,)})
    return keys


def random_state_dict(keys: dict[str, Shape], seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in keys.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.02
    return state
