import pytest
import torch

from pipeline.config import load_config
from pipeline.errors import PipelineError
from pipeline.models.factory import build_model, input_channels
from pipeline.models.plastic import PlasticHead


def test_extra_channels_and_aux_head():
    cfg = load_config("smoke", ["data.depth_channel=true", "data.coord_channel=true", "model.aux_head=true"])
    assert input_channels(cfg) == 3
    model = build_model(cfg)
    logits, empty_logit = model(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 1, 64, 64) and empty_logit.shape == (2,)
    assert isinstance(model.head, PlasticHead)


@pytest.mark.parametrize("extra", [[], ["data.depth_channel=true"]])
def test_local_encoder_weights_are_loaded_and_adapted_to_the_input_channels_by_smps_rule(tmp_path, extra):
    rgb = build_model(load_config("smoke", ["data.depth_channel=true", "data.coord_channel=true"]))
    torch.save(rgb.unet.encoder.state_dict(), tmp_path / "encoder.pth")
    model = build_model(load_config("smoke", [f"model.encoder_weights={tmp_path / 'encoder.pth'}"] + extra))
    theirs, ours = rgb.unet.encoder.state_dict(), model.unet.encoder.state_dict()
    adapted = 0
    for key, value in ours.items():
        if value.ndim == 4 and value.shape[1] != 3 and theirs[key].shape[1] == 3:
            rgb_weight = theirs[key]
            # grey: R + G + B (smp's rule for one channel); depth starts at zero, so the stem's response is kept
            expected = torch.cat([rgb_weight.sum(dim=1, keepdim=True), torch.zeros_like(rgb_weight[:, : value.shape[1] - 1])], dim=1)
            torch.testing.assert_close(value, expected)
            adapted += 1
        else:
            torch.testing.assert_close(value, theirs[key])
    assert adapted == 1


def test_missing_or_foreign_weights_file(tmp_path):
    with pytest.raises(PipelineError, match="does not exist"):
        build_model(load_config("smoke", [f"model.encoder_weights={tmp_path / 'none.pth'}"]))
    torch.save({"something.else": torch.zeros(3)}, tmp_path / "foreign.pth")
    with pytest.raises(PipelineError, match="lack .* encoder tensors"):
        build_model(load_config("smoke", [f"model.encoder_weights={tmp_path / 'foreign.pth'}"]))


def test_decoder_widths_must_match_depth():
    with pytest.raises(PipelineError, match="one decoder width per encoder stage"):
        build_model(load_config("smoke", ["model.decoder_channels=[16, 8]"]))


@pytest.mark.parametrize("head_input, has_negatives", [("relu", False), ("preact", True)])
def test_head_reads_post_relu_or_preactivation_features(head_input, has_negatives):
    torch.manual_seed(0)
    model = build_model(load_config("smoke", [f"model.head.input={head_input}"])).eval()
    seen = {}
    model.head.register_forward_hook(lambda module, inputs, output: seen.setdefault("x", inputs[0]))
    with torch.no_grad():
        model(torch.randn(2, 1, 64, 64))
    assert bool((seen["x"] < 0).any()) is has_negatives


def test_plasticity_parameters_get_their_own_learning_rate_and_no_weight_decay():
    from pipeline.training.schedule import build_optimizer

    cfg = load_config("smoke", ["model.head.rule=eligibility", "optim.lr=0.002", "optim.plastic_lr_scale=50"])
    model = build_model(cfg)
    network, plastic = build_optimizer(model, cfg.optim).param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)].split("segmentation_head.")[-1] for p in plastic["params"]} == {
        "alpha", "eta_logit", "modulator.weight", "modulator.bias"}
    assert plastic["lr"] == pytest.approx(0.1) and plastic["weight_decay"] == 0
    assert network["lr"] == pytest.approx(0.002) and network["weight_decay"] == cfg.optim.weight_decay
    assert len(network["params"]) + len(plastic["params"]) == len(list(model.parameters()))
    assert not build_optimizer(model, cfg.optim).defaults.get("fused")  # fused kernels on CUDA only; the CPU path as it was


def test_encoder_learning_rate_scale_puts_exactly_the_encoder_in_its_own_group_and_moves_it_less():
    from pipeline.training.schedule import build_optimizer, build_scheduler

    cfg = load_config("smoke", ["optim.lr=0.002", "optim.encoder_lr_scale=0.1", "optim.warmup_epochs=0"])
    model = build_model(cfg)
    network, encoder = build_optimizer(model, cfg.optim).param_groups[:2]
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in encoder["params"]} == {n for n, _ in model.unet.encoder.named_parameters(prefix="unet.encoder")}
    assert all(not names[id(p)].startswith("unet.encoder.") for p in network["params"])
    assert encoder["lr"] == pytest.approx(0.0002) and network["lr"] == pytest.approx(0.002)
    assert encoder["weight_decay"] == network["weight_decay"] == cfg.optim.weight_decay
    # the scheduler keeps the ratio: after a step of the cosine, the encoder's rate is still a tenth
    optimizer = build_optimizer(model, cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim, steps_per_epoch=10, epochs=2)
    optimizer.step()
    scheduler.step()
    rates = [group["lr"] for group in optimizer.param_groups]
    assert rates[1] == pytest.approx(rates[0] * 0.1) and rates[0] < 0.002
    # at scale 1 there is one network group, as before the option existed
    assert len(build_optimizer(model, load_config("smoke").optim).param_groups) == len(build_optimizer(model, cfg.optim).param_groups) - 1


def test_frozen_encoder_batchnorm_keeps_its_running_statistics_while_the_decoder_trains():
    torch.manual_seed(0)
    model = build_model(load_config("smoke", ["model.freeze_encoder_bn=true"])).train()
    norms = lambda part: [m for m in part.modules() if isinstance(m, torch.nn.BatchNorm2d)]  # noqa: E731
    before = [m.running_mean.clone() for m in norms(model.unet.encoder)]
    decoder_before = [m.running_mean.clone() for m in norms(model.unet.decoder)]
    model(torch.randn(4, 1, 64, 64) * 3 + 1)
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, norms(model.unet.encoder)))
    assert not all(torch.equal(b, m.running_mean) for b, m in zip(decoder_before, norms(model.unet.decoder)))
    assert all(m.weight.requires_grad for m in norms(model.unet.encoder))
    plain = build_model(load_config("smoke")).train()
    plain_before = [m.running_mean.clone() for m in norms(plain.unet.encoder)]
    plain(torch.randn(4, 1, 64, 64) * 3 + 1)
    assert not all(torch.equal(b, m.running_mean) for b, m in zip(plain_before, norms(plain.unet.encoder)))


def test_imagenet_weights_offline_is_one_line_naming_the_local_file_alternative(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PipelineError, match="offline.*model.encoder_weights=path/to/weights.pth"):
        build_model(load_config("smoke", ["model.encoder_weights=imagenet"]))


def test_scse_decoder_attention():
    with pytest.raises(PipelineError, match="scse squeezes channels by 16"):
        load_config("smoke", ["model.decoder_attention=scse"])  # smoke's decoder is 16, 8, 8 wide
    plain = build_model(load_config("smoke", ["model.decoder_channels=[32, 16, 16]"]))
    scse = build_model(load_config("smoke", ["model.decoder_attention=scse", "model.decoder_channels=[32, 16, 16]"]))
    assert not any("cSE" in name for name, _ in plain.named_modules())
    assert any(name.endswith("attention1.attention.cSE") for name, _ in scse.named_modules())
    logits, _ = scse(torch.randn(2, 1, 64, 64))
    assert logits.shape == (2, 1, 64, 64)


def test_a_deep_copy_of_a_hypercolumn_model_predicts_by_itself():
    """EMA's AveragedModel deep-copies the model: the copy's hooks must fill the copy's stage list, not the original's."""
    import copy

    torch.manual_seed(0)
    model = build_model(load_config("smoke", ["model.hypercolumn=true", "model.decoder_channels=[16,8,4]"])).eval()
    twin = copy.deepcopy(model)
    images = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(twin(images)[0], model(images)[0])
        for parameter in twin.parameters():
            parameter.add_(0.01)
        moved = twin(images)[0]
    assert not torch.equal(moved, model(images)[0].detach()) and model.hypercolumn.stages == []


def test_hypercolumn_head_reads_every_decoder_stage_upsampled():
    import torch.nn.functional as F

    cfg = load_config("smoke", ["model.hypercolumn=true", "model.decoder_channels=[16,8,4]"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    stages, fused_input = [], []
    for block in model.unet.decoder.blocks:
        block.register_forward_hook(lambda _m, _a, out: stages.append(out))
    model.hypercolumn.fuse.register_forward_hook(lambda _m, args, _out: fused_input.append(args[0]))
    with torch.no_grad():
        logits, _ = model(torch.randn(2, 1, 64, 64))
    assert logits.shape == (2, 1, 64, 64) and len(stages) == 3
    hyper = fused_input[0]
    assert hyper.shape == (2, 16 + 8 + 4, 64, 64)
    expected = torch.cat([F.interpolate(s, size=(64, 64), mode="bilinear", align_corners=False) for s in stages[:2]] + [stages[2]], dim=1)
    torch.testing.assert_close(hyper, expected)
    assert model.hypercolumn.stages == []  # nothing held after the forward
    plain = build_model(load_config("smoke", ["model.decoder_channels=[16,8,4]"]))
    # the head keeps its width: the fuse (28 -> 4 conv, BN) is all the option adds
    assert plain.hypercolumn is None and sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in plain.parameters()) == 28 * 4 + 2 * 4
