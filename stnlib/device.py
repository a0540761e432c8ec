"""Device and numeric precision choices."""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys

import torch

from .errors import ConfigError


def pick_device(spec: str = "auto") -> torch.device:
    """``auto``: CUDA when present, else the CPU. ``cpu``, ``cuda`` or ``cuda:N`` otherwise."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {spec}: no CUDA device is available here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {spec!r}; use auto, cpu, cuda or cuda:N")
    return device


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` (on the CPU) on ``device``. To CUDA through pinned memory, without waiting: the host
    does not wait for the GPU to finish its queued work, as a copy from pageable memory would."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


# oneDNN ISA caps (``ONEDNN_MAX_CPU_ISA``) under which its bf16 kernels are native.
BF16_ISA_CAPS = {"AVX512_CORE_BF16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX",
                 "AVX10_1_512_AMX_FP16", "ALL", "DEFAULT"}


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AMX or AVX-512 BF16) that oneDNN may
    use: ``ONEDNN_MAX_CPU_ISA=AVX2`` (the common laptop's ISA, set to emulate one) rules them out."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "ALL")).upper()
    if cap not in BF16_ISA_CAPS:
        return False
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


# The variable that caps each of PyTorch's CPU kernel libraries at an instruction set: ATen's own kernels
# (pooling, sampling, elementwise), oneDNN (convolutions) and MKL (matrix products). A newer CPU stands
# for an older one only with all three set; MKL ignores the other two.
ISA_CAP_VARIABLES = {"ATen": "ATEN_CPU_CAPABILITY", "oneDNN": "ONEDNN_MAX_CPU_ISA", "MKL": "MKL_ENABLE_INSTRUCTIONS"}
# What makes this machine stand for a laptop's AVX2 CPU (no AVX-512, no AMX).
AVX2_STAND_IN = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def isa_caps() -> str:
    """The instruction-set caps in effect, for a benchmark's header: ``"none"``, ``"AVX2 (ATen, oneDNN,
    MKL)"``, or, where only some libraries are capped, a line that names the uncapped ones, whose kernels
    still use the CPU's widest instructions (so the figures stand for no real CPU)."""
    caps = {library: os.environ.get(variable) for library, variable in ISA_CAP_VARIABLES.items()}
    caps["oneDNN"] = caps["oneDNN"] or os.environ.get("DNNL_MAX_CPU_ISA")
    capped = {library: value.upper() for library, value in caps.items() if value}
    if not capped:
        return "none"
    uncapped = [library for library in caps if library not in capped]
    values = set(capped.values())
    if not uncapped and len(values) == 1:
        return f"{values.pop()} ({', '.join(capped)})"
    line = ", ".join(f"{library} {value}" for library, value in capped.items())
    if uncapped:
        names = " and ".join(f"{library} ({ISA_CAP_VARIABLES[library]})" for library in uncapped)
        line += f"; PARTIAL: {names} uncapped, so these figures stand for no real CPU"
    return line


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def keep_freed_memory_for_reuse() -> bool:
    """Let glibc's malloc keep freed blocks of up to 1 GiB for the next allocation.

    By default glibc returns blocks above 32 MiB (a batch's unfolded patches, a wide layer's
    activations) to the OS when they are freed, and the next training step faults every page of
    them back in: on a 2-core CPU that costs about a third of an fp32 training step. With this
    setting the process keeps its peak memory instead. Idempotent; a no-op off glibc (returns
    whether the setting took effect). ``STNLIB_KEEP_FREED_MEMORY=0`` turns it off.
    """
    if not sys.platform.startswith("linux") or os.environ.get("STNLIB_KEEP_FREED_MEMORY") == "0":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(M_TRIM_THRESHOLD, (1 << 31) - 1))


def cpu_model_name() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    import platform

    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def autocast(device: torch.device, precision: str):
    """Autocast context for ``bf16``; a no-op for ``fp32``."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
