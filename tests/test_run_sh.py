import os
import subprocess
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.device_count() > 0, reason="torch sees a GPU here: the mismatch cannot be staged")
def test_run_sh_refuses_a_gpu_box_where_torch_sees_no_gpu(tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text('#!/bin/sh\nif [ "$1" = "-L" ]; then echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)"; else echo 470.57; fi\n')
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    env.pop("PRESET", None)
    result = subprocess.run([str(REPO_ROOT / "run.sh"), "gpus"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "nvidia-smi lists 1 GPU(s) but torch sees none" in result.stderr and "470.57" in result.stderr
    assert "PRESET=cpu-demo" in result.stderr
    # an explicit preset is the user's informed choice: no error
    result = subprocess.run([str(REPO_ROOT / "run.sh"), "gpus"], capture_output=True, text=True, env=dict(env, PRESET="cpu-demo"), timeout=120)
    assert result.returncode == 0 and result.stdout.strip().splitlines()[-1] == "0"
