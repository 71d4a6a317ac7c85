"""NaN and Inf in training: a non-finite loss or gradient never reaches the weights or a checkpoint.

``StepGuard`` looks, just before each optimizer step, at the losses the model computed since the
training step began and at the gradients that optimizer is about to apply (one device
synchronisation per optimizer step). A non-finite value blocks that step and the rest of the
training step; ``--nan_policy`` decides what follows:

* ``stop`` (default): training ends with one message naming the loss and where it happened.
* ``restore``: networks and optimizers go back to the last good state, an in-memory copy of
  what the last checkpoint saved (or of the start of the run), and training goes on with the
  next batch.
* ``skip``: the batch is dropped. What the training step changed with finite values stays (an
  optimizer that stepped before the fault, batch-norm statistics of its forward passes);
  parameters and buffers that are no longer finite (e.g. batch-norm statistics after a NaN
  forward pass) are reset from the last good state.

``check_finite_weights`` refuses to save a checkpoint holding a NaN or Inf parameter or buffer.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import torch

from util.errors import UserError

logger = logging.getLogger(__name__)

NAN_POLICIES = ("stop", "restore", "skip")


class NumericalFault(UserError):
    """Training met a NaN/Inf it must not go on with; the message says where and what to do."""


class _BlockedStep(Exception):
    """Raised by the optimizer pre-step hook to abandon the current training step."""


def nonfinite_entries(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors that hold a NaN or an infinity."""
    return [name for name, tensor in tensors.items()
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]


def check_finite_weights(tag: str, state_dicts: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
    """Refuse to save checkpoint ``tag`` when a network's parameters or buffers hold NaN/Inf."""
    for net_name, state_dict in state_dicts.items():
        bad = nonfinite_entries(state_dict)
        if bad:
            more = f" and {len(bad) - 1} more tensors" if len(bad) > 1 else ""
            raise NumericalFault(
                f"refusing to save checkpoint '{tag}': network {net_name} has NaN/Inf values in {bad[0]}{more}. "
                f"The checkpoint files already on disk are unchanged; resume from them with --continue_train "
                f"(with a lower --lr, or --nan_policy restore)")


def _cpu_copy(value: Any) -> Any:
    """A copy of a (nested) state dict with every tensor copied to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: _cpu_copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu_copy(item) for item in value)
    return value


class StepGuard:
    """Runs a model's training steps so that no NaN/Inf reaches its weights (see the module notes)."""

    def __init__(self, model: Any, policy: str, max_faults: int) -> None:
        if policy not in NAN_POLICIES:
            raise ValueError(f"policy must be one of {NAN_POLICIES}, got {policy!r}")
        self.model, self.policy, self.max_faults = model, policy, max_faults
        self.faults = 0
        self._good: dict[str, Any] | None = None
        self._active = False
        self._losses_before: dict[str, Any] = {}
        self._checked: set[str] = set()
        for optimizer in model.optimizers:
            optimizer.register_step_pre_hook(self._before_step)

    def remember(self) -> None:
        """Keep the current networks and optimizers as the last good state (restore and skip only).

        Called after every checkpoint save, whose weights were just checked to be finite.
        """
        if self.policy == "stop":
            return
        self._good = {
            "networks": {name: _cpu_copy(net.state_dict()) for name, net in self.model.networks().items()},
            "optimizers": [_cpu_copy(optimizer.state_dict()) for optimizer in self.model.optimizers],
        }

    def optimize(self, where: str) -> bool:
        """``model.optimize_parameters()``, guarded. Returns False when a non-finite value blocked
        the step and the policy lets training go on; raises ``NumericalFault`` when it does not.
        ``where`` (e.g. "epoch 3, batch 12") goes into the messages."""
        model = self.model
        if self._good is None:
            self.remember()  # the state before the first guarded step
        self._losses_before = {name: getattr(model, f"loss_{name}", None) for name in model.loss_names}
        self._checked = set()
        self._active = True
        try:
            model.optimize_parameters()
            self._check(self._fresh_losses(), [])  # losses computed after the last optimizer step
        except _BlockedStep as blocked:
            self._after_fault(f"{blocked} at {where}")
            return False
        finally:
            self._active = False
            self._losses_before = {}  # do not keep last step's graphs alive
        return True

    # ------------------------------------------------------------------ checks
    def _fresh_losses(self) -> dict[str, Any]:
        """Losses assigned since the step began and not yet checked (identity, not value)."""
        fresh = {}
        for name in self.model.loss_names:
            value = getattr(self.model, f"loss_{name}", None)
            if value is not None and value is not self._losses_before.get(name) and name not in self._checked:
                fresh[name] = value
        self._checked.update(fresh)
        return fresh

    def _before_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if self._active:
            grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            self._check(self._fresh_losses(), grads)

    def _check(self, losses: Mapping[str, Any], grads: list[torch.Tensor]) -> None:
        parts = [torch.as_tensor(value).detach().float().reshape(-1) for value in losses.values()]
        if grads:
            parts.append(torch.nn.utils.get_total_norm(grads).float().reshape(-1))
        if not parts:
            return
        device = parts[0].device
        if bool(torch.isfinite(torch.cat([part.to(device) for part in parts])).all()):  # the one sync
            return
        values = {name: float(torch.as_tensor(value).detach().float().sum()) for name, value in losses.items()}
        bad = [f"{name} = {value}" for name, value in values.items() if not math.isfinite(value)]
        if bad:
            raise _BlockedStep(f"non-finite loss {', '.join(bad)}")
        raise _BlockedStep(f"non-finite gradients (finite losses) for network(s) {', '.join(self._owners(grads))}")

    def _owners(self, grads: list[torch.Tensor]) -> list[str]:
        bad = {id(grad) for grad in grads if not bool(torch.isfinite(grad).all())}
        return [name for name, net in self.model.networks().items()
                if any(p.grad is not None and id(p.grad) in bad for p in net.parameters())]

    # ---------------------------------------------------------------- recovery
    def _after_fault(self, description: str) -> None:
        self.faults += 1
        for optimizer in self.model.optimizers:
            optimizer.zero_grad(set_to_none=True)
        if self.policy == "stop":
            raise NumericalFault(
                f"training stopped: {description}. The step was not applied and no checkpoint was written from it; "
                f"resume from the last checkpoint with --continue_train (perhaps with a lower --lr), or train with "
                f"--nan_policy restore or skip")
        if self.faults > self.max_faults:
            raise NumericalFault(
                f"training stopped: {description}, non-finite step {self.faults} of this run, more than "
                f"--nan_max_faults {self.max_faults}. Lower --lr or check the data, then resume with --continue_train")
        if self.policy == "restore":
            for name, net in self.model.networks().items():
                net.load_state_dict(self._good["networks"][name])
            for optimizer, state in zip(self.model.optimizers, self._good["optimizers"]):
                optimizer.load_state_dict(_cpu_copy(state))  # a copy: optimizers update their state in place
            action = "restored the networks and optimizers of the last good state"
        else:
            reset = self._reset_nonfinite()
            action = "skipped the batch" + (f"; reset {', '.join(reset)} from the last good state" if reset else "")
        logger.warning("%s: %s (--nan_policy %s, non-finite step %d of at most %d)", description, action,
                       self.policy, self.faults, self.max_faults)

    def _reset_nonfinite(self) -> list[str]:
        reset = []
        with torch.no_grad():
            for name, net in self.model.networks().items():
                current = net.state_dict()
                for key in nonfinite_entries(current):
                    current[key].copy_(self._good["networks"][name][key])
                    reset.append(f"{name}.{key}")
        return reset
