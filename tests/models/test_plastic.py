import math
import os

import numpy as np
import pytest
import torch

from pipeline.config import HeadConfig, load_config
from pipeline.models.factory import build_model
from pipeline.models.plastic import PlasticHead, fused_against_plain, plastic_update

RULES = ["hebb", "oja", "neuromod", "eligibility"]


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def reference_logits(head: PlasticHead, features: np.ndarray) -> np.ndarray:
    """The papers' equations, one image at a time, one step at a time, in float64 numpy."""
    cfg = head.cfg
    W = head.weight.detach().double().numpy()
    b = head.bias.detach().double().numpy()
    alpha = head.alpha.detach().double().numpy()
    eta = 1 / (1 + math.exp(-float(head.eta_logit.detach()))) if head.uses_eta else None
    out = []
    for image in features:
        C = image.shape[0]
        x = np.tanh(image.reshape(C, -1))  # (C,P)
        P = x.shape[1]
        hebb = np.zeros_like(W)
        elig = np.zeros_like(W)
        if cfg.rule in ("neuromod", "eligibility"):
            u = head.modulator.weight.detach().double().numpy()
            c = head.modulator.bias.detach().double().numpy()
            M = np.tanh(u @ x.mean(axis=1) + c)  # (1,) or (K,)
        for step in range(cfg.steps):
            z = (W + alpha * hebb).T @ x + b[:, None]  # (K,P)
            if step == cfg.steps - 1:
                break
            y = sigmoid(z)
            S = x @ y.T / P  # (C,K)
            s = (y**2).mean(axis=1)  # (K,)
            if cfg.rule == "hebb":
                hebb = (1 - eta) * hebb + eta * S
            elif cfg.rule == "oja":
                for ci in range(C):
                    for k in range(W.shape[1]):
                        hebb[ci, k] = hebb[ci, k] + eta * (S[ci, k] - hebb[ci, k] * s[k])
            elif cfg.rule == "neuromod":
                hebb = np.clip(hebb + M[None, :] * S, -1, 1)
            else:
                elig = (1 - eta) * elig + eta * S
                hebb = np.clip(hebb + M[None, :] * elig, -1, 1)
        out.append(z.reshape((-1,) + image.shape[1:]))
    return np.stack(out)


def make_head(rule, steps=3, out_channels=1, **kwargs):
    torch.manual_seed(0)
    head = PlasticHead(6, out_channels, HeadConfig(rule=rule, steps=steps, eta_init=0.3, alpha_init=0.7, **kwargs))
    with torch.no_grad():  # make the plastic part matter, so a wrong rule cannot pass
        head.alpha.normal_(0, 1.0)
        if hasattr(head, "modulator"):
            head.modulator.weight.normal_(0, 1.0)
    return head.double()


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("out_channels, modulation", [(1, "image"), (2, "channel")])
def test_rules_match_float64_reference(rule, out_channels, modulation):
    head = make_head(rule, out_channels=out_channels, modulation=modulation)
    features = torch.randn(3, 6, 5, 7, dtype=torch.float64) * 2
    got = head(features).detach().numpy()
    expected = reference_logits(head, features.numpy())
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    plain = PlasticHead(6, out_channels, HeadConfig(rule="none")).double()
    with torch.no_grad():
        plain.weight.copy_(head.weight)
        plain.bias.copy_(head.bias)
    # plasticity really changes the output (otherwise the reference test would be vacuous)
    assert not np.allclose(got, plain(torch.tanh(features)).detach().numpy(), atol=1e-3)


@pytest.mark.parametrize("rule", RULES)
def test_gradients_reach_every_plastic_parameter(rule):
    head = make_head(rule, steps=2).float()
    head(torch.randn(2, 6, 8, 8)).pow(2).mean().backward()
    names = ["weight", "bias", "alpha"] + (["eta_logit"] if rule != "neuromod" else [])
    names += ["modulator.weight", "modulator.bias"] if rule in ("neuromod", "eligibility") else []
    grads = dict(head.named_parameters())
    assert set(grads) == set(names)  # no parameter that cannot learn (DDP would refuse it)
    for name in names:
        assert grads[name].grad is not None and grads[name].grad.abs().sum() > 0, name


def test_none_is_an_ordinary_1x1_conv():
    head = PlasticHead(8, 1, HeadConfig(rule="none"))
    conv = torch.nn.Conv2d(8, 1, kernel_size=1)
    with torch.no_grad():
        conv.weight.copy_(head.weight.t()[:, :, None, None])
        conv.bias.copy_(head.bias)
    features = torch.randn(4, 8, 16, 16)
    torch.testing.assert_close(head(features), conv(features))


@pytest.mark.parametrize("rule", ["none"] + RULES)
@pytest.mark.parametrize("placement", ["pixels", "rows"])
def test_batch_independence(rule, placement):
    cfg = load_config("smoke", [f"model.head.rule={rule}", f"model.head.placement={placement}"])
    torch.manual_seed(1)
    model = build_model(cfg).eval()
    images = torch.randn(8, 1, 64, 64)
    with torch.no_grad():
        batch_logits, _ = model(images)
        for i in (0, 5):
            alone, _ = model(images[i : i + 1])
            torch.testing.assert_close(alone[0], batch_logits[i], rtol=1e-4, atol=1e-5)
        shuffled, _ = model(images.flip(0))
    torch.testing.assert_close(shuffled.flip(0), batch_logits, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("rule", RULES)
def test_traces_stay_bounded_for_10000_random_steps(rule):
    generator = torch.Generator().manual_seed(0)
    hebb = torch.zeros(16, 8, 4)
    eligibility = torch.zeros_like(hebb)
    for _ in range(10_000):
        x = torch.rand(16, 8, 30, generator=generator) * 2 - 1
        y = torch.rand(16, 4, 30, generator=generator)
        coactivation = torch.einsum("bcp,bkp->bck", x, y) / 30
        post_power = y.pow(2).mean(2).unsqueeze(1)
        eta = torch.rand((), generator=generator) * 0.5
        modulation = torch.rand(16, 1, 4, generator=generator) * 2 - 1
        hebb, eligibility = plastic_update(rule, "hard", hebb, eligibility, coactivation, post_power, eta, modulation)
    assert torch.isfinite(hebb).all()
    assert hebb.abs().max() <= 1.0 + 1e-6
    assert hebb.abs().max() > 1e-3  # it did learn something


@pytest.mark.parametrize("clip", ["hard", "decay", "oja"])
def test_neuromod_clip_modes_bounded(clip):
    generator = torch.Generator().manual_seed(1)
    hebb = torch.zeros(4, 3, 2)
    for _ in range(2000):
        coactivation = torch.rand(4, 3, 2, generator=generator) * 2 - 1
        post_power = torch.rand(4, 1, 2, generator=generator)
        modulation = torch.rand(4, 1, 1, generator=generator) * 2 - 1
        hebb, _ = plastic_update("neuromod", clip, hebb, hebb, coactivation, post_power, torch.tensor(0.2), modulation)
    assert hebb.abs().max() <= 1.0 + 1e-6


def test_neuromod_with_decay_clip_learns_eta():
    head = make_head("neuromod", steps=2, clip="decay").float()
    head(torch.randn(2, 6, 8, 8)).pow(2).mean().backward()
    assert head.eta_logit.grad.abs() > 0


def test_unknown_rule_is_an_error():
    with pytest.raises(ValueError, match="unknown plasticity rule"):
        PlasticHead(4, 1, HeadConfig(rule="stdp"))


def lifetime_head(rule="oja", **kwargs):
    torch.manual_seed(0)
    return PlasticHead(6, 1, HeadConfig(rule=rule, episode="lifetime", eta_init=0.2, **kwargs))


def test_lifetime_trace_updates_after_training_steps_and_round_trips():
    head = lifetime_head().train()
    for _ in range(3):
        head(torch.randn(4, 6, 8, 8)).mean().backward()
        head.consolidate()
    assert head.lifetime_hebb.abs().sum() > 0
    clone = lifetime_head()
    clone.load_state_dict(head.state_dict())
    torch.testing.assert_close(clone.lifetime_hebb, head.lifetime_hebb)
    head.reset_lifetime()
    assert head.lifetime_hebb.abs().sum() == 0


def test_lifetime_frozen_at_inference_is_order_independent_and_adapt_learns():
    head = lifetime_head().train()
    head(torch.randn(4, 6, 8, 8))
    head.consolidate()
    frozen = head.lifetime_hebb.clone()
    head.eval()
    a, b = torch.randn(2, 6, 8, 8), torch.randn(2, 6, 8, 8)
    with torch.no_grad():
        first = torch.cat([head(a), head(b)])
        second = torch.cat([head(b), head(a)])
    torch.testing.assert_close(first, torch.cat([second[2:], second[:2]]))
    torch.testing.assert_close(head.lifetime_hebb, frozen)
    adapting = lifetime_head(inference_plasticity="adapt")
    adapting.load_state_dict(head.state_dict())
    adapting.eval()
    with torch.no_grad():
        adapting(a)  # a plain eval forward never changes the trace, even with adapt
    torch.testing.assert_close(adapting.lifetime_hebb, frozen)
    adapting.adapt_sequentially([a])
    assert not torch.equal(adapting.lifetime_hebb, frozen)


def _all_reduce_worker(rank, world, init_file, out_dir):
    import torch.distributed as dist

    from pipeline.training.distributed import all_reduce_mean

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    head = lifetime_head().train()
    torch.manual_seed(100 + rank)  # each rank sees different data
    head(torch.randn(3, 6, 8, 8))
    stats = [head.step_record.coactivation.clone(), head.step_record.post_power.clone()]
    head.consolidate(all_reduce_mean)
    torch.save({"hebb": head.lifetime_hebb, "stats": stats}, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def test_lifetime_all_reduce_under_two_process_gloo(tmp_path):
    torch.multiprocessing.spawn(_all_reduce_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    torch.testing.assert_close(rank0["hebb"], rank1["hebb"])
    assert not torch.equal(rank0["stats"][0], rank1["stats"][0])
    head = lifetime_head()
    mean_coactivation = (rank0["stats"][0] + rank1["stats"][0]) / 2
    mean_power = (rank0["stats"][1] + rank1["stats"][1]) / 2
    expected, _ = plastic_update("oja", "hard", torch.zeros(6, 1), torch.zeros(6, 1), mean_coactivation, mean_power, head.eta.detach(), None)
    torch.testing.assert_close(rank0["hebb"], expected)


def test_hebb_and_oja_coincide_for_two_steps_from_a_zero_trace_and_part_at_three():
    """From Hebb_0 = 0 both rules give Hebb_1 = eta * S, so T = 2 cannot tell them apart; T = 3 can."""
    features = torch.randn(2, 6, 8, 8, dtype=torch.float64)
    outputs = {}
    for rule in ("hebb", "oja"):
        for steps in (2, 3):
            head = make_head(rule, steps=steps)
            outputs[rule, steps] = head(features)
    torch.testing.assert_close(outputs["hebb", 2], outputs["oja", 2])
    assert not torch.allclose(outputs["hebb", 3], outputs["oja", 3])



def test_oja_trace_stays_bounded_when_outputs_are_small():
    """Oja's fixed point S/s grows without bound as y -> 0 (y = 0.01, eta = 0.5: |Hebb| passed 33 before the clamp)."""
    hebb = torch.zeros(1, 4, 1)
    coactivation = torch.full((1, 4, 1), 0.01 * 0.5)  # x ~ 0.5, y = 0.01
    post_power = torch.full((1, 1, 1), 0.01**2)
    for _ in range(20_000):
        hebb, _ = plastic_update("oja", "hard", hebb, hebb, coactivation, post_power, torch.tensor(0.5), None)
    assert float(hebb.max()) == pytest.approx(1.0)  # held at the bound; unclamped it would head for S/s = 50


def test_single_step_lifetime_head_says_eta_and_modulator_are_fixed_and_they_stay_fixed():
    torch.manual_seed(0)
    head = PlasticHead(6, 1, HeadConfig(rule="eligibility", steps=1, episode="lifetime", eta_init=0.2))
    note = head.fixed_parameters_note()
    assert note and "eta_logit" in note and "modulator.weight" in note and "eta = 0.2" in note
    trainable = {name for name, p in head.named_parameters() if p.requires_grad}
    assert trainable == {"weight", "bias", "alpha"}
    optimizer = torch.optim.AdamW([p for p in head.parameters() if p.requires_grad], lr=0.1)
    eta_before = head.eta_logit.detach().clone()
    for _ in range(3):
        head(torch.randn(2, 6, 4, 4)).pow(2).mean().backward()
        optimizer.step()
        head.consolidate()
    assert torch.equal(head.eta_logit, eta_before) and head.lifetime_hebb.abs().sum() > 0
    assert make_head("hebb", steps=3).fixed_parameters_note() is None


def _adapting_model(plasticity="adapt"):
    cfg = load_config("smoke", ["model.head.episode=lifetime", f"model.head.inference_plasticity={plasticity}", "train.device=cpu",
                                "model.head.eta_init=0.5"])
    torch.manual_seed(3)
    model = build_model(cfg)
    with torch.no_grad():
        model.head.lifetime_hebb.normal_(0, 0.3)
        model.head.alpha.normal_(0, 1.0)
    return cfg, model


def test_adapt_at_inference_does_not_depend_on_batch_size_and_learns_once_per_image_in_order():
    from pipeline.models.predict import predict_probs

    cfg, model = _adapting_model()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 101, 101), dtype=np.uint8)
    depth = np.zeros(7, np.float32)
    start = {key: value.clone() for key, value in model.state_dict().items()}  # state_dict() shares storage
    results, traces = {}, {}
    for batch_size in (1, 3, 7):
        model.load_state_dict(start)
        results[batch_size] = predict_probs(model, images, depth, cfg, torch.device("cpu"), views=["none", "hflip"], batch_size=batch_size)
        traces[batch_size] = model.head.lifetime_hebb.clone()
    for batch_size in (3, 7):
        np.testing.assert_allclose(results[batch_size], results[1], rtol=0, atol=1e-6)
        torch.testing.assert_close(traces[batch_size], traces[1], rtol=0, atol=1e-7)
    # the order of the TTA views does not matter: their statistics are averaged before the one update per image
    model.load_state_dict(start)
    flipped_order = predict_probs(model, images, depth, cfg, torch.device("cpu"), views=["hflip", "none"], batch_size=3)
    np.testing.assert_allclose(flipped_order, results[1], rtol=0, atol=1e-6)
    # and it did learn: the last image sees a trace different from the first one's
    frozen_cfg, frozen_model = _adapting_model("frozen")
    frozen_model.load_state_dict(start)
    frozen = predict_probs(frozen_model, images, depth, frozen_cfg, torch.device("cpu"), views=["none", "hflip"], batch_size=7)
    np.testing.assert_allclose(frozen[0], results[1][0], rtol=0, atol=1e-6)  # image 0 reads the untouched trace
    assert np.abs(frozen[-1] - results[1][-1]).max() > 1e-5
    assert not torch.equal(traces[1], start["unet.segmentation_head.lifetime_hebb"])


def test_original_placement_reproduces_the_original_dynamics_at_batch_size_1():
    """One step per sample, trace carried from sample to sample from the raw logit map's row 0, zero at eval."""
    torch.manual_seed(0)
    n = 8
    head = PlasticHead(3, 1, HeadConfig(rule="oja", placement="original", eta_init=0.3), input_size=n).double()
    with torch.no_grad():
        head.alpha.normal_(0, 1.0)
        head.weight.add_(torch.randn(n, n, dtype=torch.float64) * 0.3)
    features = torch.randn(4, 3, n, n, dtype=torch.float64)
    W, alpha, b = (t.detach().numpy() for t in (head.weight, head.alpha, head.bias))
    eta = float(head.eta.detach())
    conv_w, conv_b = head.to_logits.weight.detach().numpy()[0, :, 0, 0], float(head.to_logits.bias.detach())
    hebb = np.zeros((n, n))
    expected = []
    for image in features.numpy():
        L = np.tensordot(conv_w, image, axes=1) + conv_b  # the raw logit map, no tanh
        z = L @ (W + alpha * hebb) + b
        expected.append(z)
        y0 = sigmoid(z[0])
        hebb = np.clip(hebb + eta * (np.outer(L[0], y0) - hebb * (y0**2)[None, :]), -1, 1)  # Oja, as the original wrote it
    head.train()
    got = torch.cat([head(features[i : i + 1]) for i in range(4)])[:, 0].detach().numpy()
    np.testing.assert_allclose(got, np.stack(expected), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(head.carried_hebb.numpy(), hebb, rtol=1e-10, atol=1e-12)
    assert np.abs(hebb).max() > 1e-3
    # a batch of 4 runs the same sample-to-sample dynamics
    head.reset_lifetime()
    np.testing.assert_allclose(head(features)[:, 0].detach().numpy(), np.stack(expected), rtol=1e-10, atol=1e-10)
    # evaluation zeroes the trace; an epoch starts from zero
    head.eval()
    L = torch.einsum("c,bchw->bhw", head.to_logits.weight[0, :, 0, 0], features) + head.to_logits.bias
    torch.testing.assert_close(head(features)[:, 0], L @ head.weight + head.bias)
    assert head.resets_each_epoch and head.fixed_parameters_note().startswith("model.head.placement=original: eta_logit")


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("episode", ["image", "lifetime"])
def test_each_image_is_independent_of_its_batch_in_training_mode(rule, episode):
    """In training mode too (where the lifetime path records statistics): image i's logits do not depend on
    the other images of its batch, nor on their order."""
    head = make_head(rule, episode=episode)
    if episode == "lifetime":
        with torch.no_grad():
            head.lifetime_hebb.normal_(0, 0.3)
    head.train()
    features = torch.randn(5, 6, 4, 4, dtype=torch.float64)
    together = head(features)
    for i in (0, 3):
        torch.testing.assert_close(head(features[i : i + 1])[0], together[i], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(head(features.flip(0)).flip(0), together, rtol=1e-12, atol=1e-12)


def test_clip_modes_by_hand():
    """decay: (1 - eta) H + eta M D;  oja: clamp(H + M D - |M| s H);  hard: clamp(H + M D). Numbers by hand."""
    hebb = torch.tensor([[[0.5], [-0.9]]])  # (1, C=2, K=1)
    coactivation = torch.tensor([[[0.4], [-0.6]]])
    post_power = torch.tensor([[[0.25]]])
    modulation = torch.tensor([[[-0.5]]])
    eta = torch.tensor(0.2)
    decay, _ = plastic_update("neuromod", "decay", hebb, hebb, coactivation, post_power, eta, modulation)
    # 0.8 * 0.5 + 0.2 * (-0.5) * 0.4 = 0.36;  0.8 * -0.9 + 0.2 * (-0.5) * (-0.6) = -0.66
    torch.testing.assert_close(decay, torch.tensor([[[0.36], [-0.66]]]))
    oja, _ = plastic_update("neuromod", "oja", hebb, hebb, coactivation, post_power, eta, modulation)
    # 0.5 - 0.2 - 0.5 * 0.25 * 0.5 = 0.2375;  -0.9 + 0.3 - 0.5 * 0.25 * (-0.9) = -0.4875
    torch.testing.assert_close(oja, torch.tensor([[[0.2375], [-0.4875]]]))
    hard, _ = plastic_update("neuromod", "hard", hebb, hebb, torch.tensor([[[-2.0], [3.0]]]), post_power, eta, modulation)
    # 0.5 + 1.0 = 1.5 -> 1;  -0.9 - 1.5 = -2.4 -> -1
    torch.testing.assert_close(hard, torch.tensor([[[1.0], [-1.0]]]))
    elig = torch.tensor([[[0.1], [0.2]]])
    hebb_new, elig_new = plastic_update("eligibility", "decay", hebb, elig, coactivation, post_power, eta, modulation)
    # E <- 0.8 E + 0.2 S = (0.16, 0.04); H <- 0.8 H + 0.2 M E_new = (0.4 - 0.016, -0.72 - 0.004)
    torch.testing.assert_close(elig_new, torch.tensor([[[0.16], [0.04]]]))
    torch.testing.assert_close(hebb_new, torch.tensor([[[0.384], [-0.724]]]))


def test_frozen_control_is_the_plastic_path_with_the_trace_held_at_zero():
    """frozen = W^T tanh(F) + b through the same iterations: equal to a plastic head whose alpha is 0."""
    frozen = make_head("frozen")
    features = torch.randn(3, 6, 5, 7, dtype=torch.float64)
    plain_tanh = PlasticHead(6, 1, HeadConfig(rule="none")).double()
    with torch.no_grad():
        plain_tanh.weight.copy_(frozen.weight)
        plain_tanh.bias.copy_(frozen.bias)
    torch.testing.assert_close(frozen(features), plain_tanh(torch.tanh(features)))
    hebb = make_head("hebb")
    with torch.no_grad():
        hebb.weight.copy_(frozen.weight)
        hebb.bias.copy_(frozen.bias)
    assert not torch.allclose(hebb(features), frozen(features))  # plasticity is the only difference
    assert not frozen.uses_eta and {n for n, _ in frozen.named_parameters()} == {"weight", "bias", "alpha"}


@pytest.mark.parametrize("rule", ["frozen"] + RULES)
@pytest.mark.parametrize("out_channels", [1, 2])
@pytest.mark.parametrize("episode", ["image", "lifetime"])
def test_fused_presynaptic_path_gives_the_plain_autograd_values_and_gradients(rule, out_channels, episode):
    """FusedPresynaptic (hand-written backward through a ledger) against the plain autograd ops, float64, with
    channels_last features as the U-Net gives them: logits and the gradients of the features and every parameter."""
    torch.manual_seed(0)
    head = PlasticHead(5, out_channels, HeadConfig(rule=rule, episode=episode)).double().train()
    with torch.no_grad():  # move every parameter off its initial value, so no gradient term vanishes by chance
        for parameter in head.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    features = torch.randn(3, 5, 7, 6, dtype=torch.float64).to(memory_format=torch.channels_last)
    weights = torch.randn(3, out_channels, 7, 6, dtype=torch.float64)
    pairs = fused_against_plain(head, features, weights)
    assert len(pairs) == 2 + len(list(head.parameters()))  # every parameter has a gradient
    for plain, fused in pairs:
        torch.testing.assert_close(fused, plain, rtol=1e-12, atol=1e-12)
    small = torch.randn(2, 5, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(head, (small,))


def test_fused_presynaptic_functions_run_in_fp32_inside_autocast():
    """The hand-written Functions under autocast (bf16 features from an autocast conv): custom_fwd casts their
    inputs to fp32 and custom_bwd replays the forward's autocast state, so the backward neither crashes on mixed
    dtypes nor drifts from an fp32 pass. The head's own fp32 island is bypassed: the Functions are called bare."""
    from pipeline.models.presynaptic import FusedPresynaptic

    torch.manual_seed(0)
    features = torch.randn(2, 4, 5, 6)
    weights, bias, post = torch.randn(2, 4, 1), torch.randn(1), torch.randn(2, 1, 30)
    grads = []
    for autocast in (False, True):
        inputs = features.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            source = inputs.to(torch.bfloat16) if autocast else inputs  # what an autocast conv hands the head
            x = FusedPresynaptic(source)
            z, s, m = x.project(weights, bias), x.correlate(post), x.mean()
            assert z.dtype == s.dtype == m.dtype == torch.float32
            (z.square().sum() + s.sum() + m.sum()).backward()
        grads.append(inputs.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=2e-2, atol=2e-2)  # bf16 rounding of the features only
