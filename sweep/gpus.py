"""How many GPUs torch can use here, found without importing torch.

The sweep's driver needs torch for nothing else, and importing it takes 1-2 s: too long before a
one-line error about --num-gpus or --gpus-per-trial. torch's own count asks the CUDA driver
(`cudaGetDeviceCount`, which honours CUDA_VISIBLE_DEVICES); this asks the same driver through
ctypes. Whatever this cannot tell for sure (a ROCm or unusual build, an unreadable version)
is left to torch itself.
"""
from __future__ import annotations

import ctypes
import importlib.util
import re
from pathlib import Path


def torch_gpu_count() -> int:
    """torch.cuda.device_count(), without importing torch where its build can be read."""
    folder = _torch_folder()
    if folder is None:
        return 0  # no torch: no trial can use a GPU
    build = torch_build(folder)
    if build is None:
        import torch

        return torch.cuda.device_count()
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
    torch's CUDA (torch finds none then either)."""
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
