"""Mixed precision (``--amp none|bf16|fp16|auto``): the autocast region and the loss scaler.

Every model runs its forward passes and losses inside :meth:`MixedPrecision.autocast` and
sends each backward pass and optimizer step through :meth:`backward` and :meth:`step`, so
one object decides the precision of all models. bf16 keeps fp32's exponent range and needs
no loss scaling; fp16 (CUDA only) scales the loss with a ``GradScaler`` so that small
gradients do not underflow, and skips the steps whose gradients overflowed. ``auto`` is bf16
where the hardware computes bf16 convolutions natively, fp32 elsewhere (:func:`resolve_amp`).
"""
from __future__ import annotations

import contextlib
from typing import Any, ContextManager, Iterable

import torch

from util.errors import UserError

AMP_MODES = ("none", "bf16", "fp16", "auto")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def native_bf16(device: str | torch.device) -> bool:
    """Whether ``device`` runs bf16 convolutions in hardware: a CUDA GPU with bf16, or a CPU with AMX tiles.

    Elsewhere (AVX-512 BF16 without AMX included) oneDNN emulates them and a bf16 step is slower than fp32.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.cpu._is_amx_tile_supported()


def resolve_amp(mode: str, device: str | torch.device) -> str:
    """``--amp auto`` -> ``bf16`` where :func:`native_bf16`, else ``none``; other modes unchanged."""
    if mode != "auto":
        return mode
    return "bf16" if native_bf16(device) else "none"


class MixedPrecision:
    """Autocast context, scaled backward and scaler-aware optimizer steps for one device."""

    def __init__(self, mode: str, device: torch.device) -> None:
        if mode not in AMP_MODES:
            raise UserError(f"--amp must be one of {', '.join(AMP_MODES)}, got {mode!r}")
        mode = resolve_amp(mode, device)
        if mode == "fp16" and device.type != "cuda":
            raise UserError(f"--amp fp16 needs a CUDA device (this run uses {device}); on CPU use --amp bf16")
        self.mode, self.device = mode, device
        self.scaler = torch.amp.GradScaler(device.type) if mode == "fp16" else None

    def autocast(self) -> ContextManager[Any]:
        """The region where convolutions and matrix products run in the reduced precision."""
        if self.mode == "none":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.mode])

    def backward(self, loss: torch.Tensor) -> None:
        # Backward runs outside autocast (PyTorch's advice): each gradient op follows the
        # precision its forward op was given.
        with torch.autocast(self.device.type, enabled=False):
            (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizers: Iterable[torch.optim.Optimizer]) -> None:
        """Update with each optimizer whose gradients came from the latest ``backward``."""
        for optimizer in optimizers:
            if self.scaler is not None:
                self.scaler.step(optimizer)  # skipped (and the scale lowered) on inf/NaN gradients
            else:
                optimizer.step()
        if self.scaler is not None:
            # Once per backward: the next loss is scaled with the updated factor.
            self.scaler.update()
        if self.mode != "none":
            # Autocast keeps low-precision copies of weights for the rest of its region; the
            # optimizers just changed the weights, so later forward passes must not reuse them.
            torch.clear_autocast_cache()

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
