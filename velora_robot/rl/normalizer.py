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

    def stats(self) -> tuple[float, Tensor, Tensor]:
        """(count, mean, var), copied: where a parallel collector starts or ends."""
        return float(self.count), self.mean.clone(), self.var.clone()

    @torch.no_grad()
    def merge(self, start: tuple[float, Tensor, Tensor],
              ends: list[tuple[float, Tensor, Tensor]]) -> None:
        """Become the statistics of every sample: those behind `start` (where each parallel
        collector began) and each collector's since (its `end` minus `start`, in counts, sums
        and sums of squares, float64)."""
        n0, m0, v0 = start[0], start[1].double(), start[2].double()
        count, total, squares = n0, n0 * m0, n0 * (v0 + m0**2)
        for n, m, v in ends:
            m, v = m.double(), v.double()
            count += n - n0
            total = total + n * m - n0 * m0
            squares = squares + n * (v + m**2) - n0 * (v0 + m0**2)
        if count <= 0:
            return
        mean = total / count
        self.mean.copy_(mean)
        self.var.copy_((squares / count - mean**2).clamp(min=0.0))
        self.count.fill_(count)

    def forward(self, x: Tensor) -> Tensor:
        return ((x - self.mean) / torch.sqrt(self.var + self.eps)).clamp(-self.clip, self.clip)
