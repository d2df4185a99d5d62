"""PlasticHead: a final layer whose effective weights are W + alpha * Hebb, with Hebb changing as it runs.

After Miconi et al. (2018, differentiable plasticity) and Miconi et al. (2019, Backpropamine). Shapes:
pre/x (B,C,P) presynaptic (channels-major), post/y (B,K,P), W and alpha (C,K) (alpha may be a scalar), trace Hebb (B,C,K),
co-activation S (B,C,K), post power s (B,1,K), modulation M (B,1,1) or (B,1,K), eta a scalar in (0,1).

  step t:   z = (W + alpha * Hebb)^T x + b,   y = sigmoid(z),   S = mean_p x y^T,   s_k = mean_p y_k^2
  frozen:   Hebb <- Hebb (the control: same path and iterations, the trace stays at zero)
  hebb:     Hebb <- (1 - eta) Hebb + eta S                  (a convex mix: |Hebb| <= max |S| <= 1 by itself)
  oja:      Hebb <- clamp(Hebb + eta (S - Hebb * s), -1, 1)  (the fixed point S/s is unbounded as s -> 0: clamped)
  neuromod: M = tanh(u . mean_p x + c),       Hebb <- clip(Hebb + M S)
  eligibility:  E <- (1 - eta) E + eta S,      Hebb <- clip(Hebb + M E_new)
            (the new E: this step's co-activation acts at once; Backpropamine's code uses the old E, one step later)
  clip:     hard = clamp to [-1, 1]; decay = (1 - eta) Hebb + eta M D; oja = Hebb + M D - |M| s Hebb, then clamped

Lifetime episodes start each image from a trace consolidated over training (batch-mean S, s, M after each
step). With inference_plasticity 'adapt' the trace keeps learning at prediction time, one image at a time in
the images' order, once per image from the mean over its TTA views (`adapt_sequentially`): the result does not
depend on the batch size. A plain eval forward never changes the trace.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config import RULES, HeadConfig
from pipeline.models.presynaptic import FusedPresynaptic, Presynaptic


def plastic_update(rule: str, clip: str, hebb, eligibility, coactivation, post_power, eta, modulation):
    """One application of a plasticity rule; returns the new (hebb, eligibility)."""
    if rule == "frozen":  # the control: the trace never moves from where it started (zero)
        return hebb, eligibility
    if rule == "hebb":
        return (1 - eta) * hebb + eta * coactivation, eligibility
    if rule == "oja":
        return (hebb + eta * (coactivation - hebb * post_power)).clamp(-1.0, 1.0), eligibility
    if rule == "eligibility":
        eligibility = (1 - eta) * eligibility + eta * coactivation
        drive = eligibility
    elif rule == "neuromod":
        drive = coactivation
    else:
        raise ValueError(f"unknown plasticity rule {rule!r}; choose one of {RULES}")
    if clip == "decay":
        return (1 - eta) * hebb + eta * modulation * drive, eligibility
    if clip == "oja":
        hebb = hebb + modulation * drive - modulation.abs() * post_power * hebb
    elif clip == "hard":
        hebb = hebb + modulation * drive
    else:
        raise ValueError(f"unknown clip mode {clip!r}; choose hard, decay or oja")
    return hebb.clamp(-1.0, 1.0), eligibility


@dataclass
class StepRecord:
    """A training forward's batch means, for the lifetime trace: S (C,K), s (1,K), M (1,1) / (1,K) or None."""

    coactivation: torch.Tensor
    post_power: torch.Tensor
    modulation: torch.Tensor | None


class PlasticHead(nn.Module):
    """Maps decoder features (B,C,H,W) to logits (B,K,H,W). rule 'none' is an ordinary 1x1 convolution.

    One class per placement: this one is `pixels` (each pixel's decoder features are the presynaptic vector);
    `RowsPlasticHead` and `OriginalPlasticHead` below are the original Plastic-UNet's. `PlasticHead(..., cfg)`
    makes the one that cfg.placement names."""

    placement = "pixels"

    def __new__(cls, *args, **kwargs):
        cfg = kwargs.get("cfg", args[2] if len(args) > 2 else None)
        if cls is PlasticHead and cfg is not None:
            cls = PLACEMENTS[cfg.placement]
        return super().__new__(cls)

    def __init__(self, in_channels: int, out_channels: int = 1, cfg: HeadConfig | None = None, input_size: int = 128):
        super().__init__()
        self.cfg = cfg = cfg or HeadConfig()
        if cfg.rule not in RULES:
            raise ValueError(f"unknown plasticity rule {cfg.rule!r}; choose one of {RULES}")
        self.rule = cfg.rule
        self.fused = True  # FusedPresynaptic: the same values and gradients with less memory traffic; False: plain autograd
        n_in, n_out, weight = self._connections(in_channels, out_channels, input_size)
        self.weight = nn.Parameter(weight)  # W (C,K)
        self.bias = nn.Parameter(torch.zeros(n_out))
        if self.rule == "none":
            return
        alpha_shape = (n_in, n_out) if cfg.alpha == "free" else ()
        self.alpha = nn.Parameter(torch.full(alpha_shape, cfg.alpha_init))
        if self.uses_eta:  # the simple neuromodulated rule lets M take eta's place: no unused parameter for DDP
            self.eta_logit = nn.Parameter(torch.tensor(math.log(cfg.eta_init / (1 - cfg.eta_init))))
        if self.rule in ("neuromod", "eligibility"):
            modulator_out = n_out if cfg.modulation == "channel" else 1
            self.modulator = nn.Linear(n_in, modulator_out)  # M = tanh(u . mean_p x + c)
            nn.init.normal_(self.modulator.weight, std=0.1)
            nn.init.zeros_(self.modulator.bias)
        if self.one_step:
            # one step reads Hebb_0 and never updates it within the image: eta and M only shape the lifetime trace
            # (under no_grad), so no gradient reaches them. They stay fixed at their initial values, and are
            # marked so (DDP and the optimizer then leave them alone); fixed_parameters_note() says so in the log.
            for name, parameter in self.named_parameters():
                if name == "eta_logit" or name.startswith("modulator."):
                    parameter.requires_grad_(False)
        if cfg.episode == "lifetime":
            self.register_buffer("lifetime_hebb", torch.zeros(n_in, n_out))
            self.register_buffer("lifetime_eligibility", torch.zeros(n_in, n_out))
        # the state that crosses calls, both detached: `step_record`, the last training forward's batch means, which
        # on_step_end folds into the lifetime trace after the optimizer step (and clears); `last_trace`, the last
        # episode's final trace, which statistics() reads once per epoch
        self.step_record: StepRecord | None = None
        self.last_trace: torch.Tensor | None = None

    def _connections(self, in_channels: int, out_channels: int, input_size: int) -> tuple[int, int, torch.Tensor]:
        """(C, K, initial W): every decoder channel to every output channel."""
        bound = 1 / math.sqrt(in_channels)
        return in_channels, out_channels, torch.empty(in_channels, out_channels).uniform_(-bound, bound)

    @property
    def one_step(self) -> bool:
        """The episode's one step reads Hebb_0 and never an update: eta and M get no gradient."""
        return self.cfg.steps == 1

    # ----- the plastic dynamics -------------------------------------------------------------------
    @property
    def uses_eta(self) -> bool:
        return self.rule in ("hebb", "oja", "eligibility") or (self.rule == "neuromod" and self.cfg.clip == "decay")

    @property
    def eta(self) -> torch.Tensor | None:
        return torch.sigmoid(self.eta_logit) if self.uses_eta else None

    @property
    def uses_lifetime(self) -> bool:
        return self.rule != "none" and self.cfg.episode == "lifetime"

    @property
    def adapts_at_inference(self) -> bool:
        return self.uses_lifetime and self.cfg.inference_plasticity == "adapt"

    @property
    def resets_each_epoch(self) -> bool:
        return self.uses_lifetime and self.cfg.lifetime_reset_each_epoch

    fixed_setting = "model.head.steps=1"  # the setting that fixes eta and M, for the note

    def fixed_parameters_note(self) -> str | None:
        fixed = [name for name, parameter in self.named_parameters() if not parameter.requires_grad]
        if not fixed:
            return None
        setting = self.fixed_setting
        return (f"{setting}: {', '.join(fixed)} get no gradient (one step never reads the trace it updates); "
                f"they stay at their initial values (eta = {float(self.eta.detach()) if self.uses_eta else 'n/a'})")

    def _inputs(self, features: torch.Tensor):
        """The presynaptic input (see models/presynaptic.py: x channels-major (B,C,P), so every product is a
        long-vector bmm) and a function mapping z (B,K,P) to logits."""
        batch, _, height, width = features.shape
        if self.fused:
            return FusedPresynaptic(features), lambda z: z.view(batch, -1, height, width)
        x = torch.tanh(features.contiguous()).view(batch, -1, height * width)
        return Presynaptic(x, x), lambda z: z.view(batch, -1, height, width)

    def _modulation(self, presynaptic) -> torch.Tensor | None:
        if self.rule not in ("neuromod", "eligibility"):
            return None
        return torch.tanh(self.modulator(presynaptic.mean())).unsqueeze(1)  # (B,1,1) or (B,1,K)

    def _initial_traces(self, batch: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (batch,) + tuple(self.weight.shape)
        if self.uses_lifetime:
            return self.lifetime_hebb.expand(shape), self.lifetime_eligibility.expand(shape)
        zeros = torch.zeros(shape, device=device)
        return zeros, zeros

    def _plain(self, features: torch.Tensor) -> torch.Tensor:
        """rule none: W alone, as a 1x1 convolution."""
        return F.conv2d(features, self.weight.t()[:, :, None, None].to(features.dtype), self.bias.to(features.dtype))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.rule == "none":
            return self._plain(features)
        with torch.autocast(device_type=features.device.type, enabled=False):  # trace maths in fp32
            features = features.to(torch.promote_types(features.dtype, torch.float32))
            return self._plastic_forward(features)

    def _plastic_forward(self, features: torch.Tensor) -> torch.Tensor:
        hebb, eligibility = self._initial_traces(features.shape[0], features.device)
        record = self.uses_lifetime and self.training
        logits, statistics = self._episode(features, hebb, eligibility, record)
        if record:  # batch means, folded into the lifetime trace by consolidate() after the optimizer step
            self.step_record = StepRecord(*(None if t is None else t.mean(0) for t in statistics))
        return logits

    def _episode(self, features: torch.Tensor, hebb: torch.Tensor, eligibility: torch.Tensor, record: bool):
        """The T plastic steps of one episode per image. Returns logits (B,K,H,W) and, with `record`, the last
        step's per-image statistics (S (B,C,K), s (B,1,K), M or None), detached, for the lifetime trace."""
        presynaptic, to_logits = self._inputs(features)
        eta = self.eta
        modulation = self._modulation(presynaptic)
        needs_power = record or self.rule == "oja" or self.cfg.clip == "oja"  # s enters only Oja terms (and the lifetime record)
        for step in range(self.cfg.steps):
            weights = self.weight + self.alpha * hebb  # (B,C,K)
            z = presynaptic.project(weights, self.bias)  # (B,K,P)
            if (step == self.cfg.steps - 1 or self.rule == "frozen") and not record:
                break  # frozen: the trace never moves, so every later step would compute this same z
            post = torch.sigmoid(z)
            coactivation = presynaptic.correlate(post)  # (B,C,K)
            post_power = post.pow(2).mean(dim=2).unsqueeze(1) if needs_power else None  # (B,1,K)
            if step < self.cfg.steps - 1:
                hebb, eligibility = plastic_update(self.rule, self.cfg.clip, hebb, eligibility, coactivation, post_power, eta, modulation)
        self.last_trace = hebb.detach()  # read lazily by statistics(): no device sync per step
        statistics = None
        if record:
            statistics = (coactivation.detach(), post_power.detach(), None if modulation is None else modulation.detach())
        return to_logits(z), statistics

    @torch.no_grad()
    def adapt_sequentially(self, view_features: list[torch.Tensor]) -> list[torch.Tensor]:
        """inference_plasticity 'adapt': logits of each TTA view's features (each (B,C,H,W), image i of every
        view is the same image), image after image; after each image the lifetime trace takes one update from
        the mean of its views' statistics. Returns one (B,K,H,W) logits tensor per view."""
        if not self.adapts_at_inference:
            raise RuntimeError("adapt_sequentially needs a lifetime head with inference_plasticity 'adapt'")
        dtype = torch.promote_types(view_features[0].dtype, torch.float32)
        outputs: list[list[torch.Tensor]] = [[] for _ in view_features]
        for image in range(view_features[0].shape[0]):
            statistics = []
            for view, features in enumerate(view_features):
                hebb, eligibility = self._initial_traces(1, features.device)
                with torch.autocast(device_type=features.device.type, enabled=False):
                    logits, stats = self._episode(features[image : image + 1].to(dtype), hebb, eligibility, record=True)
                outputs[view].append(logits)
                statistics.append(stats)
            mean = [None if parts[0] is None else torch.stack(parts).mean(0)[0] for parts in zip(*statistics)]
            self._apply_lifetime(*mean)
        return [torch.cat(parts) for parts in outputs]

    # ----- the lifetime trace ---------------------------------------------------------------------
    @torch.no_grad()
    def _apply_lifetime(self, coactivation, post_power, modulation) -> None:
        hebb, eligibility = plastic_update(
            self.rule, self.cfg.clip, self.lifetime_hebb, self.lifetime_eligibility, coactivation, post_power, self.eta, modulation
        )
        self.lifetime_hebb.copy_(hebb)
        self.lifetime_eligibility.copy_(eligibility)

    @torch.no_grad()
    def consolidate(self, all_reduce=None) -> None:
        """After a training step: fold the batch-mean co-activation into the lifetime trace.

        `all_reduce(tensor)` averages a tensor across DDP ranks in place, so every rank's trace stays identical.
        """
        if not self.uses_lifetime or self.step_record is None:
            return
        coactivation, post_power, modulation = self.step_record.coactivation, self.step_record.post_power, self.step_record.modulation
        self.step_record = None
        if all_reduce is not None:
            for tensor in (coactivation, post_power) + (() if modulation is None else (modulation,)):
                all_reduce(tensor)
        self._apply_lifetime(coactivation, post_power, modulation)

    # ----- the life cycle the trainer drives (through the model-level functions below) -----------------
    PLASTICITY_PARAMETERS = ("alpha", "eta_logit", "modulator.")  # learned at their own rate, without decay

    def plasticity_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name.startswith(self.PLASTICITY_PARAMETERS) and p.requires_grad]

    def on_epoch_start(self) -> None:
        if self.resets_each_epoch:
            self.reset_lifetime()

    def on_step_end(self, all_reduce=None) -> None:
        """After each optimizer step (see consolidate)."""
        self.consolidate(all_reduce)

    @torch.no_grad()
    def reset_lifetime(self) -> None:
        if self.uses_lifetime:
            self.lifetime_hebb.zero_()
            self.lifetime_eligibility.zero_()

    def statistics(self) -> dict[str, float]:
        """Numbers worth plotting over training: eta, |alpha|, |Hebb| of the last forward, |lifetime trace|."""
        if self.rule == "none":
            return {}
        trace_abs = 0.0 if self.last_trace is None else float(self.last_trace.abs().mean())
        stats = {"head_alpha_abs": float(self.alpha.detach().abs().mean()), "head_trace_abs": trace_abs}
        if self.uses_eta:
            stats["head_eta"] = float(self.eta.detach())
        if self.uses_lifetime:
            stats["head_lifetime_abs"] = float(self.lifetime_hebb.abs().mean())
        return stats


class RowsPlasticHead(PlasticHead):
    """The original Plastic-UNet's placement with this project's episodes: a 1-channel logit map L (N x N) times
    (W + alpha * Hebb) (N x N), the rows of L as presynaptic vectors, W starting as the identity."""

    placement = "rows"

    def _connections(self, in_channels: int, out_channels: int, input_size: int) -> tuple[int, int, torch.Tensor]:
        self.to_logits = nn.Conv2d(in_channels, 1, kernel_size=1)
        return input_size, input_size, torch.eye(input_size)  # starts as the plain head: L @ I = L

    def _logit_map(self, features: torch.Tensor) -> torch.Tensor:
        logit_map = self.to_logits(features)[:, 0]  # (B,N,N)
        if logit_map.shape[-1] != self.weight.shape[0]:
            raise ValueError(f"{self.placement} placement was built for {self.weight.shape[0]} px inputs, got {logit_map.shape[-1]}")
        return logit_map

    def _inputs(self, features: torch.Tensor):
        columns_major = self._logit_map(features).transpose(1, 2)  # (B,C,P): P = rows, C = columns
        return Presynaptic(columns_major, torch.tanh(columns_major)), lambda z: z.transpose(1, 2).unsqueeze(1)

    def _plain(self, features: torch.Tensor) -> torch.Tensor:
        presynaptic, to_logits = self._inputs(features)
        return to_logits(torch.matmul(self.weight.t(), presynaptic.product) + self.bias[:, None])


class OriginalPlasticHead(RowsPlasticHead):
    """The original Plastic-UNet's placement and dynamics: one plastic step per sample, the trace (carried_hebb)
    carried from sample to sample, reset each epoch, zero at evaluation."""

    placement = "original"
    fixed_setting = "model.head.placement=original"

    def __init__(self, in_channels: int, out_channels: int = 1, cfg: HeadConfig | None = None, input_size: int = 128):
        super().__init__(in_channels, out_channels, cfg, input_size)
        if self.rule != "none":
            self.register_buffer("carried_hebb", torch.zeros_like(self.weight.detach()))  # carried from sample to sample

    @property
    def one_step(self) -> bool:
        return True

    @property
    def resets_each_epoch(self) -> bool:
        return True

    def _plastic_forward(self, features: torch.Tensor) -> torch.Tensor:
        """The original Plastic-UNet's dynamics: one plastic step per sample, the trace carried from sample to
        sample (in the batch's order; at batch size 1 exactly the original), reset each epoch, zero at evaluation,
        and the raw logit map L for both product and update. Its update takes row 0 only: the original's
        bmm(L.unsqueeze(2), y.unsqueeze(1))[0] on an (N,N) map is the outer product of L[0] and y[0]."""
        logit_map = self._logit_map(features)  # (B,N,N)
        if not self.training:
            return (logit_map @ self.weight + self.bias).unsqueeze(1)
        outputs = []
        for image in logit_map:
            trace = self.carried_hebb  # replaced, never changed in place: autograd keeps the one this step read
            z = image @ (self.weight + self.alpha * trace) + self.bias  # (N,N)
            outputs.append(z)
            with torch.no_grad():
                post = torch.sigmoid(z[0])
                coactivation = torch.outer(image[0], post)
                self.carried_hebb, _ = plastic_update(self.rule, "hard", trace, trace, coactivation, post.pow(2)[None], self.eta, None)
        self.last_trace = self.carried_hebb
        return torch.stack(outputs).unsqueeze(1)

    @torch.no_grad()
    def consolidate(self, all_reduce=None) -> None:
        """Under DDP every rank carries the mean trace."""
        if all_reduce is not None and self.rule != "none":
            all_reduce(self.carried_hebb)

    @torch.no_grad()
    def reset_lifetime(self) -> None:
        if self.rule != "none":
            self.carried_hebb.zero_()


PLACEMENTS = {"pixels": PlasticHead, "rows": RowsPlasticHead, "original": OriginalPlasticHead}


def fused_against_plain(head: PlasticHead, features: torch.Tensor, weights: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(plain autograd, fused) pairs for the loss sum(logits * weights): the logits, the features' gradient and
    every parameter's that has one. How the fused presynaptic path is checked (tests, benchmarks/gpu_check.py)."""
    results = []
    for fused in (False, True):
        head.fused = fused
        head.zero_grad()
        inputs = features.clone().requires_grad_()
        logits = head(inputs)
        (logits * weights).sum().backward()
        results.append([logits.detach(), inputs.grad] + [p.grad.clone() for p in head.parameters() if p.grad is not None])
    return list(zip(*results))


def plastic_heads(model: nn.Module) -> list[PlasticHead]:
    return [module for module in model.modules() if isinstance(module, PlasticHead)]


# ----- what a trainer calls: the heads' life cycle, without knowing their fields ----------------------------
def on_epoch_start(model: nn.Module) -> None:
    """Before each training epoch: heads that reset their trace each epoch (placement original, or
    lifetime_reset_each_epoch) do so."""
    for head in plastic_heads(model):
        head.on_epoch_start()


def on_step_end(model: nn.Module, all_reduce=None) -> None:
    """After each optimizer step: lifetime traces consolidate the step's co-activations (`all_reduce` averages a
    tensor across DDP ranks in place, so every rank keeps the same trace)."""
    for head in plastic_heads(model):
        head.on_step_end(all_reduce)


def statistics(model: nn.Module) -> dict[str, float]:
    """Numbers worth logging per epoch (eta, |alpha|, |trace|, |lifetime trace|)."""
    stats: dict[str, float] = {}
    for head in plastic_heads(model):
        stats.update(head.statistics())
    return stats


def plasticity_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable plasticity parameters (alpha, eta, modulator) of every head, for their own optimizer group."""
    return [parameter for head in plastic_heads(model) for parameter in head.plasticity_parameters()]


def notes(model: nn.Module) -> list[str]:
    """What a user should know about the heads before training (parameters that stay fixed)."""
    return [note for head in plastic_heads(model) if (note := head.fixed_parameters_note())]


@contextlib.contextmanager
def lifetime_preserved(model: nn.Module):
    """Within the block the lifetime traces may adapt (inference_plasticity: adapt); on leaving, they are
    restored to what they were, so validation and OOF prediction never change what training learned."""
    saved = [(head, head.lifetime_hebb.clone(), head.lifetime_eligibility.clone()) for head in plastic_heads(model) if head.uses_lifetime]
    try:
        yield
    finally:
        with torch.no_grad():
            for head, hebb, eligibility in saved:
                head.lifetime_hebb.copy_(hebb)
                head.lifetime_eligibility.copy_(eligibility)
