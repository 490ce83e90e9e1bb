"""How many GPUs torch can use here, found without importing torch.

The sweep's driver needs torch for nothing else, and importing it takes 1-2 s: too long before a
one-line error about --num-gpus or --gpus-per-trial. This asks the CUDA driver through ctypes
(`cuInit`, `cuDeviceGetCount`, which honour CUDA_VISIBLE_DEVICES) for the devices, and counts
none where torch could not use them: a CPU build, no driver, or a driver older than the CUDA
torch was built with. That is torch.cuda.device_count() when torch.cuda.is_available(), else 0
(torch's own count asks NVML and lists devices even where CUDA cannot start). Whatever this
cannot tell from torch's files (a ROCm or unusual build) is left to torch itself. `cuInit` in
the driver's process creates no context and holds no GPU memory.
"""
from __future__ import annotations

import ctypes
import importlib.util
import re
from pathlib import Path


def torch_gpu_count() -> int:
    """GPUs torch can use (0 where torch.cuda.is_available() is false), without importing
    torch where its build can be read."""
    folder = _torch_folder()
    if folder is None:
        return 0  # no torch: no trial can use a GPU
    build = torch_build(folder)
    if build is None:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    return _driver_count(build) if build else 0


def torch_build(folder: Path) -> int | None:
    """The CUDA major version an installed torch was built with, from its version.py: 0 for a
    CPU build, None where that file cannot tell (missing, a ROCm build: torch.cuda counts AMD
    GPUs then)."""
    try:
        text = (folder / "version.py").read_text()
    except OSError:
        return None
    versions = {key: value for key, value in re.findall(
        r"^(cuda|hip)\b[^=\n]*=\s*(None|['\"][^'\"]*['\"])", text, re.MULTILINE)}
    if set(versions) != {"cuda", "hip"} or versions["hip"] != "None":
        return None
    if versions["cuda"] == "None":
        return 0
    major = re.match(r"['\"](\d+)\.", versions["cuda"])
    return int(major.group(1)) if major else None


def _torch_folder() -> Path | None:
    spec = importlib.util.find_spec("torch")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _driver_count(cuda_major: int) -> int:
    """Devices the CUDA driver shows this process, 0 without a driver or with one too old for
    torch's CUDA (torch.cuda.is_available() is false then)."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    value = ctypes.c_int()
    if cuda.cuInit(0) != 0:  # e.g. no device, or CUDA_VISIBLE_DEVICES names none
        return 0
    if cuda.cuDriverGetVersion(ctypes.byref(value)) != 0 or value.value // 1000 < cuda_major:
        return 0
    if cuda.cuDeviceGetCount(ctypes.byref(value)) != 0:
        return 0
    return value.value
