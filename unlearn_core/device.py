"""Device choice: `auto` takes CUDA when present, else the CPU. Nothing here runs at import."""

from __future__ import annotations

import torch

from .errors import UserInputError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserInputError(f"device {name!r} asked for, but no CUDA GPU is available (use --device cpu or auto)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserInputError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None


def describe(device: torch.device) -> str:
    """'NVIDIA H100 80GB HBM3 (cuda:0)' or 'CPU (2 threads)'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"{torch.cuda.get_device_name(index)} (cuda:{index})"
    return f"CPU ({torch.get_num_threads()} threads)"
