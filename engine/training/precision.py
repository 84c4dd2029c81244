"""GPU speed settings of a run: ``precision`` (autocast, a gradient scaler for fp16),
``channels_last`` and ``compile``, applied around the model and the training step.

The trainer calls these small helpers instead of branching on the settings itself; with the
defaults (fp32, NCHW, eager) every helper is the identity, so the CPU path is unchanged.
``check`` repeats the configuration's device rules once ``device: auto`` is resolved.
"""
from __future__ import annotations

import contextlib

import torch

from engine.config import ConfigError

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check(cfg, device: torch.device) -> None:
    """ConfigError for a setting that cannot apply on ``device`` (e.g. device=auto on a CPU)."""
    errors = []
    if device.type != "cuda":
        if cfg.precision == "fp16":
            errors.append(("precision", f"fp16 needs CUDA, but this run uses {device} "
                                        f"(device={cfg.device}); use bf16 or fp32"))
        if cfg.channels_last:
            errors.append(("channels_last", f"applies to CUDA only, but this run uses {device} "
                                            f"(device={cfg.device}); set it to false"))
    if errors:
        raise ConfigError(errors)


class Speed:
    def __init__(self, cfg, device: torch.device):
        check(cfg, device)
        self.device = device
        self.dtype = _DTYPES[cfg.precision]
        self.precision = cfg.precision
        self.channels_last = bool(cfg.channels_last) and device.type == "cuda"
        self.compile = bool(cfg.compile)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.precision == "fp16" else None
        self._compiled: dict[int, torch.nn.Module] = {}

    # ---- model
    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def compiled(self, module: torch.nn.Module) -> torch.nn.Module:
        """``torch.compile(module)`` once per module object when ``compile`` is on. The frozen
        prefix and the masks still apply: the compiled forward calls the same modules and
        guards on ``frozen_prefix``, and the masks are applied outside it."""
        if not self.compile:
            return module
        got = self._compiled.get(id(module))
        if got is None:
            got = torch.compile(module)
            self._compiled = {id(module): got}    # only the current wrapper is kept
        return got

    # ---- step
    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            loss.backward()
            return
        self.scaler.scale(loss).backward()
        # Unscaled before the components' after_backward hooks: the sparsifier's gradient
        # masking and its |g| prune score then see true gradients.
        self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()

    def describe(self) -> dict:
        return {"precision": self.precision, "channels_last": self.channels_last, "compile": self.compile}

    def state_dict(self) -> dict:
        return {"scaler": self.scaler.state_dict()} if self.scaler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
