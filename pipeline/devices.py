"""Where and in what precision the network runs: the one place that decides device, AMP dtype and determinism."""

from __future__ import annotations

import os
import shutil
import subprocess

import torch

from pipeline.errors import PipelineError


def choose_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """`auto`: this process's GPU when torch sees one, else the CPU; `cpu`/`cuda` as asked."""
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise PipelineError("train.device is cuda but torch sees no GPU (check nvidia-smi and the CUDA build of torch), or set train.device=auto")
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise PipelineError(
            f"local rank {local_rank} has no GPU: torch sees {count}; start torchrun with --nproc_per_node={count} or fewer"
        )
    return torch.device("cuda", local_rank)


def usable_gpus(preset_given: bool = False) -> int:
    """The GPUs torch can use. A machine where nvidia-smi lists GPUs that torch cannot use (a driver too old for the
    wheel's CUDA, a CPU-only torch) is an error unless a preset was chosen: a silent CPU run of a GPU job takes days."""
    torch_gpus = torch.cuda.device_count()
    smi = shutil.which("nvidia-smi")
    if smi is None or torch_gpus > 0 or preset_given:
        return torch_gpus
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=60).stdout
        driver = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return torch_gpus
    smi_gpus = sum(line.startswith("GPU") for line in listed.splitlines())
    if smi_gpus:
        raise PipelineError(
            f"nvidia-smi lists {smi_gpus} GPU(s) but torch sees none (torch {torch.__version__} built for CUDA {torch.version.cuda}; "
            f"driver: {driver.strip().splitlines()[0] if driver.strip() else 'unknown'}). Install a torch build that matches the driver, "
            "or run PRESET=cpu-demo ./run.sh to train on the CPU anyway"
        )
    return torch_gpus


def has_native_bf16(device: torch.device) -> bool:
    """Real bf16 tensor cores (compute capability >= 8.0: A100, H100, RTX 30xx on). `torch.cuda.is_bf16_supported()`
    also counts emulated bf16, which is slow (e.g. on a T4)."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)


def amp_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """bf16 where native, fp16 (with a GradScaler) on older GPUs, None (fp32) on CPU or with AMP off."""
    if device.type != "cuda" or not amp:
        return None
    return torch.bfloat16 if has_native_bf16(device) else torch.float16


def autocast(device: torch.device, amp: bool):
    dtype = amp_dtype(device, amp)
    return torch.autocast(device_type=device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def needs_grad_scaler(device: torch.device, amp: bool) -> bool:
    return amp_dtype(device, amp) == torch.float16


def configure_determinism(device: torch.device, deterministic: bool) -> None:
    """On CUDA, `deterministic` trades speed (no cudnn.benchmark, deterministic kernels) for bit-exact reruns.
    The CPU path is deterministic either way."""
    if device.type != "cuda":
        return
    # fp32 matmuls and convolutions (the fp32 plastic-trace island, fp32 runs) on TF32 tensor cores: 10 bits of
    # mantissa instead of 23, what cuDNN already does for convolutions by default
    torch.backends.cuda.matmul.allow_tf32 = not deterministic
    torch.backends.cudnn.allow_tf32 = not deterministic
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
