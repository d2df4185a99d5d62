"""Options that had no test: each one changes what it says it changes."""

import pytest
import torch

from pipeline.config import HeadConfig, load_config
from pipeline.devices import configure_determinism
from pipeline.models import plastic
from pipeline.models.factory import build_model
from pipeline.models.plastic import PlasticHead
from pipeline.training.schedule import build_optimizer


def test_yoked_alpha_is_one_learned_scalar_shared_by_every_connection():
    torch.manual_seed(0)
    free = PlasticHead(8, 1, HeadConfig(rule="hebb", steps=3, alpha="free", alpha_init=0.2))
    yoked = PlasticHead(8, 1, HeadConfig(rule="hebb", steps=3, alpha="yoked", alpha_init=0.2))
    assert free.alpha.shape == (8, 1) and yoked.alpha.shape == ()
    with torch.no_grad():
        yoked.weight.copy_(free.weight)
        yoked.eta_logit.copy_(free.eta_logit)
    features = torch.rand(2, 8, 5, 5)
    torch.testing.assert_close(yoked(features), free(features))  # the same value everywhere: the same head
    yoked(features).sum().backward()
    assert yoked.alpha.grad is not None and yoked.alpha.grad.shape == () and float(yoked.alpha.grad) != 0.0


@pytest.mark.parametrize("reset", [False, True])
def test_lifetime_reset_each_epoch_zeroes_the_lifetime_trace_at_an_epoch_start_only_when_set(reset):
    model = build_model(load_config("smoke", ["model.head.episode=lifetime", f"model.head.lifetime_reset_each_epoch={str(reset).lower()}"]))
    with torch.no_grad():
        model.head.lifetime_hebb.fill_(0.5)
    plastic.on_epoch_start(model)
    assert float(model.head.lifetime_hebb.abs().sum()) == (0.0 if reset else 0.5 * model.head.lifetime_hebb.numel())


def test_sgd_takes_the_configured_momentum_and_moves_the_weights():
    cfg = load_config("smoke", ["optim.name=sgd", "optim.momentum=0.8", "optim.lr=0.1"])
    model = build_model(cfg)
    optimizer = build_optimizer(model, cfg.optim)
    assert isinstance(optimizer, torch.optim.SGD) and all(group["momentum"] == 0.8 for group in optimizer.param_groups)
    before = model.head.weight.detach().clone()
    logits, _ = model(torch.randn(2, 1, 64, 64))
    logits.mean().backward()
    optimizer.step()
    assert not torch.equal(before, model.head.weight.detach())


def test_deterministic_sets_the_cuda_flags_and_the_cpu_is_left_alone(monkeypatch):
    import os

    calls = []
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda mode, warn_only=False: calls.append((mode, warn_only)))
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", torch.backends.cudnn.deterministic)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    configure_determinism(torch.device("cpu"), True)
    assert calls == [] and "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    configure_determinism(torch.device("cuda"), True)  # only flags: no GPU needed
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark and calls == [(True, True)]
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    configure_determinism(torch.device("cuda"), False)
    assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic and calls == [(True, True)]
