"""The two non-diffusion classes: a causal autoregressive Transformer with a Gaussian output per
time step, and a whole-trajectory VAE. Each module has ``loss(x, gen)`` (x: (B, T, C) model
units, a scalar per-element loss) and ``generate(n, gen, batch)`` -> (n, T, C) model units.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ARTransformer", "TrajectoryVAE", "gaussian_nll"]


def gaussian_nll(x, mean, logvar):
    """Elementwise −log N(x; mean, exp(logvar)) (nats), same shape as x."""
    return 0.5 * (logvar + (x - mean) ** 2 * torch.exp(-logvar) + math.log(2 * math.pi))


def _floor(raw, min_logvar: float):
    """A smooth floor on log-variances: ≈ raw above ``min_logvar``, never below it."""
    return min_logvar + F.softplus(raw - min_logvar)


class CausalBlock(nn.Module):
    """Pre-norm Transformer block with causal self-attention. (B, L, d) -> (B, L, d).

    With a dict ``kv`` (incremental decoding), ``h`` holds only the newest positions; the keys
    and values of earlier positions are read from and appended to ``kv``."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, h, kv: dict | None = None):
        B, L, d = h.shape
        q, k, v = self.qkv(self.ln1(h)).reshape(B, L, 3, self.heads, d // self.heads) \
            .permute(2, 0, 3, 1, 4)
        if kv is not None:
            if kv:
                k, v = torch.cat([kv["k"], k], dim=2), torch.cat([kv["v"], v], dim=2)
            kv["k"], kv["v"] = k, v
        S = k.shape[2]
        mask = torch.ones(L, S, dtype=torch.bool, device=h.device).triu(S - L + 1)
        att = (q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)).masked_fill(mask, -math.inf)
        a = att.softmax(-1) @ v  # plain attention: faster than the CPU flash kernel at this size
        h = h + self.proj(a.transpose(1, 2).reshape(B, L, d))
        return h + self.mlp(self.ln2(h))


class ARTransformer(nn.Module):
    """p(x) = Π_t N(x_t; μ_t, diag σ²_t) with (μ_t, log σ²_t) read from a causal decoder over a
    learned start token followed by x_0..x_{t−1} (input projection of the C channels plus a
    learned positional embedding). d_model ``d``, ``depth`` blocks."""

    def __init__(self, T: int, C: int, d: int, depth: int, heads: int, min_logvar: float):
        super().__init__()
        self.T, self.C, self.min_logvar = T, C, min_logvar
        self.start = nn.Parameter(torch.zeros(1, 1, d))
        self.inp = nn.Linear(C, d)
        self.pos = nn.Parameter(0.02 * torch.randn(1, T, d))
        self.blocks = nn.ModuleList(CausalBlock(d, heads) for _ in range(depth))
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 2 * C))

    def forward(self, prefix):
        """prefix (B, L, C), 0 ≤ L < T -> (mean, logvar), each (B, L + 1, C), for steps 0..L."""
        B, L, _ = prefix.shape
        h = torch.cat([self.start.expand(B, 1, -1), self.inp(prefix)], dim=1) + self.pos[:, :L + 1]
        for block in self.blocks:
            h = block(h)
        mean, raw = self.head(h).chunk(2, dim=-1)
        return mean, _floor(raw, self.min_logvar)

    def loss(self, x, gen):
        mean, logvar = self(x[:, :-1])
        return gaussian_nll(x, mean, logvar).mean()

    @torch.no_grad()
    def generate(self, n: int, gen: torch.Generator, batch: int = 2048):
        """Ancestral sampling one step at a time, with cached keys and values."""
        device = self.start.device
        z = torch.randn(n, self.T, self.C, generator=gen).to(device)
        out = []
        for i in range(0, n, batch):
            kv = [{} for _ in self.blocks]
            x = []
            for t in range(self.T):
                h = self.start.expand(len(z[i:i + batch]), 1, -1) if t == 0 else self.inp(x[-1])
                h = h + self.pos[:, t:t + 1]
                for block, cache in zip(self.blocks, kv):
                    h = block(h, cache)
                mean, raw = self.head(h).chunk(2, dim=-1)
                std = torch.exp(0.5 * _floor(raw, self.min_logvar))
                x.append(mean + std * z[i:i + batch, t:t + 1])
            out.append(torch.cat(x, dim=1))
        return torch.cat(out)


def _mlp(n_in: int, hidden: int, n_out: int, depth: int) -> nn.Sequential:
    layers, prev = [], n_in
    for _ in range(depth):
        layers += [nn.Linear(prev, hidden), nn.SiLU()]
        prev = hidden
    return nn.Sequential(*layers, nn.Linear(prev, n_out))


class TrajectoryVAE(nn.Module):
    """A VAE over the flattened trajectory: MLP encoder to a diagonal Gaussian q(z|x) with
    ``latent`` dimensions, MLP decoder to the mean of a Gaussian p(x|z) whose log-variance is a
    learned parameter per (t, c) entry (floored at ``min_logvar``); prior N(0, I). The loss is the
    negative ELBO (KL weighted by ``beta``) per trajectory entry."""

    def __init__(self, T: int, C: int, hidden: int, latent: int, depth: int, min_logvar: float,
                 beta: float = 1.0):
        super().__init__()
        self.T, self.C, self.latent, self.min_logvar, self.beta = T, C, latent, min_logvar, beta
        self.enc = _mlp(T * C, hidden, 2 * latent, depth)
        self.dec = _mlp(latent, hidden, T * C, depth)
        self.logvar = nn.Parameter(torch.zeros(T * C))

    def decode(self, z):
        """Decoder mean, (B, latent) -> (B, T, C)."""
        return self.dec(z).reshape(len(z), self.T, self.C)

    def loss(self, x, gen):
        mu, lv = self.enc(x.reshape(len(x), -1)).chunk(2, dim=-1)
        z = mu + torch.exp(0.5 * lv) * torch.randn(mu.shape, generator=gen).to(mu.device)
        logvar = _floor(self.logvar, self.min_logvar).reshape(1, self.T, self.C)
        nll = gaussian_nll(x, self.decode(z), logvar).sum((1, 2))
        kl = 0.5 * (mu ** 2 + lv.exp() - 1 - lv).sum(1)
        return (nll + self.beta * kl).mean() / (self.T * self.C)

    @torch.no_grad()
    def generate(self, n: int, gen: torch.Generator, batch: int = 2048):
        """Decoder means at z ~ N(0, I)."""
        z = torch.randn(n, self.latent, generator=gen).to(self.logvar.device)
        return torch.cat([self.decode(z[i:i + batch]) for i in range(0, n, batch)])
