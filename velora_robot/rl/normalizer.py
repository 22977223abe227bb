"""Running observation normalization, saved with the model (and baked into exports)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RunningNorm(nn.Module):
    """(x - mean) / std, clipped; mean and variance follow every batch seen by `update`
    (parallel Welford), kept as buffers so they travel in the state dict."""

    def __init__(self, size: int, clip: float = 10.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.clip, self.eps = clip, eps
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """Fold a batch (..., size) into the running statistics."""
        x = x.reshape(-1, self.mean.shape[0])
        n = x.shape[0]
        if n == 0 or self.mean.numel() == 0:
            return
        batch_var, batch_mean = torch.var_mean(x, dim=0, unbiased=False)
        count = float(self.count)
        total = count + n
        delta = batch_mean - self.mean
        self.mean.add_(delta, alpha=n / total)
        self.var.mul_(count / total).add_(batch_var, alpha=n / total).addcmul_(
            delta, delta, value=count * n / total**2)
        self.count.fill_(total)

    def forward(self, x: Tensor) -> Tensor:
        return ((x - self.mean) / torch.sqrt(self.var + self.eps)).clamp(-self.clip, self.clip)
