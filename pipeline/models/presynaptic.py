"""The plastic head's presynaptic input and the three operations that read it, in two implementations.

Every plastic step reads the (B,C,P) presynaptic tensor twice (z = W^T x, S = x y^T / P), so its backward pass
makes one (B,C,P) gradient per read, and autograd adds them up one by one. On CPU each fresh (B,C,P) tensor
costs page faults, and autograd's backward of the K = 1 products runs as GEMMs with inner dimension 1: profiled
on a (16,8,16384) input, those took most of the head's time.

`Presynaptic` is the plain autograd version (any shapes; the rows placement uses it, and tests use it as the
reference). `FusedPresynaptic` computes the same values and gradients with one (B,C,P) tensor in the forward pass
(tanh(F) in channels-major order, written in one pass from any memory format) and two in the backward pass: each
read only records its gradient term (a (B,C,k) coefficient times a (B,k,P) vector) in a ledger, and the source's
backward, which autograd runs after every reader's, sums them all in one bmm and applies tanh' in place.
The Functions run in fp32 inside autocast (torch.amp.custom_fwd/custom_bwd), whoever calls them.
"""

from __future__ import annotations

import torch


def _fp32(function):
    """A Function's forward in fp32 inside autocast (inputs cast, autocast off), on CUDA and on CPU."""
    return torch.amp.custom_fwd(torch.amp.custom_fwd(function, device_type="cuda", cast_inputs=torch.float32), device_type="cpu",
                                cast_inputs=torch.float32)


def _as_forward(function):
    """A Function's backward under the autocast state its forward ran in (custom_bwd), on CUDA and on CPU."""
    return torch.amp.custom_bwd(torch.amp.custom_bwd(function, device_type="cuda"), device_type="cpu")


class Presynaptic:
    """x for the plastic dynamics, with `product` the tensor W reads (the same as x except in the rows placement)."""

    def __init__(self, product: torch.Tensor, pre: torch.Tensor):
        self.product, self.pre = product, pre

    def project(self, weights: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """z = bias + weights^T product: weights (B,C,K) -> (B,K,P)."""
        return torch.baddbmm(bias.view(1, -1, 1), weights.transpose(1, 2), self.product)

    def correlate(self, post: torch.Tensor) -> torch.Tensor:
        """S = x y^T / P: post (B,K,P) -> (B,C,K)."""
        return torch.bmm(self.pre, post.transpose(1, 2)) / self.pre.shape[2]

    def mean(self) -> torch.Tensor:
        """mean_p x: (B,C)."""
        return self.pre.mean(dim=2)


class _Ledger:
    """x and the gradient terms its readers recorded during one backward pass."""

    def __init__(self):
        self.x: torch.Tensor | None = None
        self.coefficients: list[torch.Tensor] = []  # each (B,C,k)
        self.vectors: list[torch.Tensor] = []  # each (B,k,P)

    def record(self, coefficient: torch.Tensor, vector: torch.Tensor) -> None:
        self.coefficients.append(coefficient)
        self.vectors.append(vector)


class _Source(torch.autograd.Function):
    """features (B,C,H,W) -> a token; the ledger holds x = tanh(F) as (B,C,P). Its backward runs after every
    reader's (autograd's order: a node runs once all gradients of its outputs are in) and sums their terms."""

    @staticmethod
    @_fp32
    def forward(ctx, features, ledger):
        batch, channels, height, width = features.shape
        x = torch.empty((batch, channels, height * width), dtype=features.dtype, device=features.device)
        torch.mul(features, 2, out=x.view(batch, channels, height, width))  # the layout change rides on this pass
        ledger.x = x.sigmoid_().mul_(2).sub_(1)  # tanh(F) = 2 sigmoid(2F) - 1: torch.tanh is 3.5x a sigmoid on CPU
        ctx.ledger, ctx.shape = ledger, features.shape
        return features.new_zeros(())

    @staticmethod
    @_as_forward
    def backward(ctx, _):
        ledger = ctx.ledger
        if not ledger.coefficients:
            return None, None
        grad = torch.bmm(torch.cat(ledger.coefficients, dim=2), torch.cat(ledger.vectors, dim=1))  # (B,C,P)
        torch.ops.aten.tanh_backward.grad_input(grad, ledger.x, grad_input=grad)  # in place: g (1 - x^2)
        ledger.coefficients, ledger.vectors = [], []
        return grad.view(ctx.shape), None


class _Project(torch.autograd.Function):
    @staticmethod
    @_fp32
    def forward(ctx, weights, token, bias, ledger):
        ctx.save_for_backward(weights)
        ctx.ledger = ledger
        return torch.baddbmm(bias.view(1, -1, 1), weights.transpose(1, 2), ledger.x)

    @staticmethod
    @_as_forward
    def backward(ctx, grad_z):
        (weights,) = ctx.saved_tensors
        x = ctx.ledger.x
        grad_weights = grad_bias = grad_token = None
        if ctx.needs_input_grad[0]:
            grad_weights = torch.bmm(grad_z, x.transpose(1, 2)).transpose(1, 2)  # (B,C,K)
        if ctx.needs_input_grad[1]:
            ctx.ledger.record(weights, grad_z)
            grad_token = grad_z.new_zeros(())
        if ctx.needs_input_grad[2]:
            grad_bias = grad_z.sum(dim=(0, 2))
        return grad_weights, grad_token, grad_bias, None


class _Correlate(torch.autograd.Function):
    @staticmethod
    @_fp32
    def forward(ctx, token, post, ledger):
        ctx.save_for_backward(post)
        ctx.ledger = ledger
        x = ledger.x
        return torch.bmm(post, x.transpose(1, 2)).transpose(1, 2) / x.shape[2]

    @staticmethod
    @_as_forward
    def backward(ctx, grad_s):
        (post,) = ctx.saved_tensors
        x = ctx.ledger.x
        grad_s = grad_s / x.shape[2]
        grad_token = grad_post = None
        if ctx.needs_input_grad[0]:
            ctx.ledger.record(grad_s, post)
            grad_token = grad_s.new_zeros(())
        if ctx.needs_input_grad[1]:
            grad_post = torch.bmm(grad_s.transpose(1, 2), x)  # (B,K,P)
        return grad_token, grad_post, None


class _Mean(torch.autograd.Function):
    @staticmethod
    @_fp32
    def forward(ctx, token, ledger):
        ctx.ledger = ledger
        return ledger.x.mean(dim=2)

    @staticmethod
    @_as_forward
    def backward(ctx, grad_mean):
        x = ctx.ledger.x
        if not ctx.needs_input_grad[0]:
            return None, None
        ctx.ledger.record((grad_mean / x.shape[2]).unsqueeze(2), x.new_ones(x.shape[0], 1, x.shape[2]))
        return grad_mean.new_zeros(()), None


class FusedPresynaptic:
    """x = tanh(F) (channels-major) with the same interface as `Presynaptic`; its product is x itself."""

    def __init__(self, features: torch.Tensor):
        self._ledger = _Ledger()
        self._token = _Source.apply(features, self._ledger)

    def project(self, weights: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return _Project.apply(weights, self._token, bias, self._ledger)

    def correlate(self, post: torch.Tensor) -> torch.Tensor:
        return _Correlate.apply(self._token, post, self._ledger)

    def mean(self) -> torch.Tensor:
        return _Mean.apply(self._token, self._ledger)
