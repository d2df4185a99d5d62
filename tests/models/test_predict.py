import numpy as np
import torch

from pipeline.config import load_config
from pipeline.data.dataset import batch_inputs, to_original_geometry
from pipeline.models.factory import build_model
from pipeline.models.predict import predict, predict_probs


def test_hflip_tta_is_the_mean_of_the_plain_and_the_hand_flipped_prediction():
    cfg = load_config("smoke", ["data.input_size=128", "data.resize=false", "train.device=cpu"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 101, 101), dtype=np.uint8)
    depth = np.zeros(3, np.float32)
    with torch.no_grad():
        plain = torch.sigmoid(model(batch_inputs(images, depth, cfg.data))[0])
        # flip the 101 px images by hand, predict, flip the prediction back by hand
        mirrored = torch.sigmoid(model(batch_inputs(images[:, :, ::-1].copy(), depth, cfg.data))[0])
    expected = 0.5 * (to_original_geometry(plain, cfg.data).numpy() + to_original_geometry(mirrored, cfg.data).numpy()[:, :, ::-1])
    got = predict_probs(model, images, depth, cfg, torch.device("cpu"), views=["none", "hflip"])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    alone = predict_probs(model, images, depth, cfg, torch.device("cpu"), views=["none"])
    assert np.abs(got - alone).max() > 1e-4  # the flipped view really contributes


def test_a_shifted_view_predicts_the_image_8_px_lower_and_further_right_in_the_canvas_and_crops_it_back_there():
    cfg = load_config("smoke", ["data.input_size=128", "data.resize=false", "train.device=cpu", "infer.tta=[none,hflip]", "infer.tta_shift=8"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    images = np.random.default_rng(2).integers(0, 256, (3, 101, 101), dtype=np.uint8)
    depth = np.zeros(3, np.float32)

    def by_hand(tiles, before):  # reflect-pad by hand with `before` px above and left, predict, crop the 101 px back
        canvas = np.pad(tiles, ((0, 0), (before, 27 - before), (before, 27 - before)), mode="reflect")
        grey = torch.from_numpy(((canvas / 255.0 - 0.5) / 0.25).astype(np.float32))[:, None]
        with torch.no_grad():
            return torch.sigmoid(model(grey)[0])[:, 0, before : before + 101, before : before + 101].numpy()

    flipped = images[:, :, ::-1].copy()
    views = [by_hand(images, 13), by_hand(flipped, 13)[:, :, ::-1], by_hand(images, 21), by_hand(flipped, 21)[:, :, ::-1]]
    from pipeline.models.predict import tta_views

    assert tta_views(cfg) == [("none", 0), ("hflip", 0), ("none", 8), ("hflip", 8)]
    got = predict_probs(model, images, depth, cfg, torch.device("cpu"), views=tta_views(cfg))
    np.testing.assert_allclose(got, np.mean(views, axis=0), atol=1e-5)
    unshifted = predict_probs(model, images, depth, cfg, torch.device("cpu"), views=["none", "hflip"])
    np.testing.assert_allclose(unshifted, np.mean(views[:2], axis=0), atol=1e-5)
    assert np.abs(views[2] - views[0]).max() > 1e-3  # the network does see the shifted placement differently


def test_empty_probability_is_the_empty_heads_sigmoid_averaged_over_the_views():
    cfg = load_config("smoke", ["model.aux_head=true", "train.device=cpu"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    images = np.random.default_rng(1).integers(0, 256, (3, 101, 101), dtype=np.uint8)
    depth = np.zeros(3, np.float32)
    with torch.no_grad():
        plain = torch.sigmoid(model(batch_inputs(images, depth, cfg.data))[1])
        mirrored = torch.sigmoid(model(batch_inputs(images[:, :, ::-1].copy(), depth, cfg.data))[1])
    _, empty = predict(model, images, depth, cfg, torch.device("cpu"), views=["none", "hflip"])
    np.testing.assert_allclose(empty, 0.5 * (plain + mirrored).numpy(), atol=1e-6)
    assert predict(build_model(load_config("smoke")).eval(), images, depth, cfg, torch.device("cpu"))[1] is None


def test_the_empty_gate_from_training_to_the_submission(workdir, capsys):
    import json

    from pipeline.cli import main
    from pipeline.competition.rle import decode

    assert main(["train", "--run", "gate", "--config", "smoke", "--set", "model.aux_head=true", "--set", "train.tensorboard=false"]) == 0
    run = workdir / "runs" / "gate"
    oof_empty = np.concatenate([np.load(run / f"fold_{k}" / "oof_empty.npy") for k in range(3)])
    assert oof_empty.shape == (90,) and ((oof_empty > 0) & (oof_empty < 1)).all()
    assert main(["infer", "--run", "gate"]) == 0
    post = json.loads((run / "postprocess.json").read_text())
    assert post["best_empty_threshold"] in load_config("smoke").infer.empty_thresholds
    assert np.load(run / "test_empty.npy").shape == (30,)
    # force a gate that empties every image whose P(empty) exceeds 0: the submission must be all empty
    (run / "postprocess.json").write_text(json.dumps({**post, "best_empty_threshold": 0.0, "best_min_area": 0}))
    assert main(["submit", "--run", "gate", "--force"]) == 0
    submission = capsys.readouterr().out.strip().splitlines()[-1]
    import pandas as pd

    rles = pd.read_csv(submission, keep_default_na=False)["rle_mask"]
    assert len(rles) == 30 and not any(decode(r, (101, 101)).any() for r in rles)
    (run / "test_empty.npy").unlink()
    assert main(["submit", "--run", "gate", "--force"]) == 2
    assert "test_empty.npy is missing" in capsys.readouterr().err


def test_adabn_re_estimates_every_batchnorm_on_the_given_images_and_touches_nothing_else():
    from torch import nn

    from pipeline.models.plastic import plastic_heads
    from pipeline.models.predict import adapt_batchnorm

    cfg = load_config("smoke", ["train.device=cpu", "model.freeze_encoder_bn=true", "model.head.episode=lifetime"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    head = plastic_heads(model)[0]
    head.lifetime_hebb.normal_()  # a trace training would have left: AdaBN must leave it as it is
    trace = head.lifetime_hebb.clone()
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    first = norms[0]  # the stem's BatchNorm: its input does not depend on any other layer's statistics
    seen = []
    hook = first.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    images = np.random.default_rng(3).integers(0, 120, (6, 101, 101), dtype=np.uint8)  # darker than anything trained on
    depth = np.zeros(6, np.float32)
    adapted = adapt_batchnorm(model, images, depth, cfg, torch.device("cpu"), views=["none"], batch_size=6)
    hook.remove()
    assert adapted == len(norms) > 5
    stem_input = seen[0].float()
    np.testing.assert_allclose(first.running_mean.numpy(), stem_input.mean(dim=(0, 2, 3)).numpy(), atol=1e-5)
    np.testing.assert_allclose(first.running_var.numpy(), stem_input.var(dim=(0, 2, 3), unbiased=True).numpy(), rtol=1e-4, atol=1e-6)
    for norm in norms:  # the encoder's frozen layers too; every layer back in eval mode with its momentum
        assert not norm.training and norm.momentum == 0.1 and int(norm.num_batches_tracked) == 1
    assert not model.training
    for key, value in model.state_dict().items():
        if key in weights:
            assert torch.equal(value, weights[key]), key
    torch.testing.assert_close(head.lifetime_hebb, trace, rtol=0, atol=0)
    # two batches: the cumulative average of the two batches' statistics
    adapt_batchnorm(model, images, depth, cfg, torch.device("cpu"), views=["none"], batch_size=3)
    halves = stem_input.mean(dim=(2, 3))
    expected = 0.5 * (halves[:3].mean(0) + halves[3:].mean(0))
    np.testing.assert_allclose(first.running_mean.numpy(), expected.numpy(), atol=1e-5)
