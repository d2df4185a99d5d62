import pytest
import torch

from pipeline import devices


@pytest.mark.parametrize("capability, dtype, scaler", [((7, 5), torch.float16, True), ((8, 0), torch.bfloat16, False), ((9, 0), torch.bfloat16, False)])
def test_amp_uses_bf16_only_with_native_support(monkeypatch, capability, dtype, scaler):
    # a T4 (7.5) reports is_bf16_supported() == True through emulation; it must get fp16 + GradScaler
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    gpu = torch.device("cuda", 0)
    assert devices.amp_dtype(gpu, amp=True) == dtype
    assert devices.needs_grad_scaler(gpu, amp=True) is scaler
    assert devices.amp_dtype(gpu, amp=False) is None and not devices.needs_grad_scaler(gpu, amp=False)


def test_cpu_runs_in_fp32_without_a_scaler():
    assert devices.amp_dtype(torch.device("cpu"), amp=True) is None
    assert not devices.needs_grad_scaler(torch.device("cpu"), amp=True)


def test_a_rank_without_a_gpu_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(devices.PipelineError, match="local rank 1 has no GPU: torch sees 1"):
        devices.choose_device("auto", local_rank=1)
    assert devices.choose_device("cpu", local_rank=1) == torch.device("cpu")
