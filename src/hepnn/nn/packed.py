"""Packed particles and multiplicity groups: a batch's real particles without padding.

A random batch of jets padded to its largest jet is half padding (N ≈ 128 for a mean of 64
particles), and attention pays for it twice (N² scores per jet). ``JetGroups`` packs the real
particles of a batch into rows, jet after jet, with the jets sorted by multiplicity, so that every
per-particle layer (embedding, LayerNorm, Linear, GELU, feed-forward) runs on the M real rows only;
the layers that need a square layout (attention) run per *group* of jets of similar multiplicity,
each padded to its own largest jet. The batch itself stays what the loader drew (random for batch-
norm models): the groups live inside one forward pass, so batch statistics are unchanged.

Every layout change is one ``index_select`` for all groups together (its backward is one
``index_add``); the per-group pieces are ``split`` views. Padded slots of a group's square layout
gather *some* real row (any finite values do): their keys get ``MASKED`` scores, a finite large
negative, so that exp(MASKED + s − max) = 0 exactly for every real row and a row without a real key
stays finite, and padded rows are never copied back. The output is exactly the per-jet function of
the dense layout: padding and particle order never change it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from hepnn.nn.dropout import keep_mask

MASKED = -1.0e4  # added to masked scores: exp(-1e4 + s - max) is 0 in fp32, bf16 and fp16 alike


@dataclass
class JetGroups:
    """The real particles of a batch packed into rows, jets sorted by multiplicity and cut into groups.

    Attributes:
        order: (B,) batch index of the jet at each sorted position (most particles first).
        rows: (M,) flat index into the (B·N) slots of each real particle, packed jet after jet in
            sorted jet order (``pack``).
        counts: (B,) particles per jet in sorted order; starts: (B,) first packed row of each jet.
        spans: per group (j0, j1, n): sorted jets [j0, j1), padded to n particles.
        gather: (S,) packed row of every slot of every group's (B_g, n) layout, groups one after the
            other (S = Σ B_g n); real: (M,) the slot of each packed row in it.
        cls_gather: (S + B,) the same for sequences [class token, particles], rows of the table
            [class tokens (B); particles (M)].
    """

    order: Tensor
    rows: Tensor
    counts: Tensor
    starts: Tensor
    spans: list[tuple[int, int, int]]
    gather: Tensor
    real: Tensor
    cls_gather: Tensor

    @classmethod
    def from_mask(cls, mask: Tensor, max_groups: int = 16, min_jets: int = 8) -> "JetGroups":
        """Groups of ≥ ``min_jets`` consecutive jets of the multiplicity order, at most ``max_groups``.

        With 16 groups of 16 jets a random batch of 256 top-tagging jets uses ~90 % of the attention
        score slots, against ~29 % padded to the largest jet. Shapes: mask (B, N) bool.
        """
        mask = mask.bool()
        b, n = mask.shape
        dev = mask.device
        counts = mask.sum(1)  # (B,)
        order = torch.sort(counts, descending=True, stable=True).indices  # (B,)
        counts = counts[order]
        pos = mask[order].reshape(-1).nonzero().squeeze(1)  # (M,) slots of the sorted (B, N) layout
        rows = order[pos // n] * n + pos % n  # (M,) slots of the batch's own layout
        starts = torch.cumsum(counts, 0) - counts  # (B,)
        n_groups = max(1, min(max_groups, b // max(min_jets, 1)))
        bounds = [b * g // n_groups for g in range(n_groups + 1)]
        widths = counts[torch.tensor(bounds[:-1], device=dev).clamp_max(max(b - 1, 0))].clamp_min(1).tolist()
        spans = [(j0, j1, w) for j0, j1, w in zip(bounds[:-1], bounds[1:], widths) if j1 > j0]
        # the (B_g, n) layouts: each jet's particles first, then padding (any real row will do)
        jet = torch.cat([torch.arange(j0, j1, device=dev).repeat_interleave(w) for j0, j1, w in spans])  # (S,)
        slot = torch.cat([torch.arange(w, device=dev).repeat(j1 - j0) for j0, j1, w in spans])  # (S,)
        is_real = slot < counts[jet]
        last = max(int(mask.sum()) - 1, 0)
        gather = torch.where(is_real, starts[jet] + slot, starts[jet].clamp_max(last))  # (S,)
        real = is_real.nonzero().squeeze(1)  # (M,) in packed order: jets sorted, particles in order
        seq = torch.cat([torch.arange(j0, j1, device=dev).repeat_interleave(w + 1) for j0, j1, w in spans])
        seq_slot = torch.cat([torch.arange(w + 1, device=dev).repeat(j1 - j0) for j0, j1, w in spans])
        in_jet = (seq_slot >= 1) & (seq_slot <= counts[seq])
        cls_gather = torch.where(in_jet, b + starts[seq] + seq_slot - 1, seq)  # (S + B,) class token: row seq
        return cls(order, rows, counts, starts, spans, gather, real, cls_gather)

    def pack(self, x: Tensor) -> Tensor:
        """Real particles of a padded tensor, packed. Shapes: (B, N, ...) -> (M, ...)."""
        return x.reshape(-1, *x.shape[2:]).index_select(0, self.rows)  # (B·N, ...) -> (M, ...)

    def square(self, t: Tensor, with_cls: bool = False) -> list[Tensor]:
        """Rows squared into each group's padded layout; with ``with_cls`` each jet's sequence is its
        class-token row then its particles (``t`` is the table [class tokens (B); particles (M)]).

        Shapes: t (M, F) -> per group (B_g, n, F); with_cls: t (B + M, F) -> (B_g, 1 + n, F).
        """
        index = self.cls_gather if with_cls else self.gather
        if t.shape[0] == 0:  # no real particle in the whole batch: nothing to gather from
            t = t.new_zeros(1, t.shape[-1])
        parts = t.index_select(0, index).split([(j1 - j0) * (w + with_cls) for j0, j1, w in self.spans])
        return [p.view(j1 - j0, w + with_cls, -1) for p, (j0, j1, w) in zip(parts, self.spans)]  # (B_g, n, F)

    def unsquare(self, ys: list[Tensor]) -> Tensor:
        """The real rows of the groups' padded outputs, packed. Shapes: per group (B_g·n, F) -> (M, F)."""
        return torch.cat(ys).index_select(0, self.real)

    def key_bias(self, g: int, dtype: torch.dtype) -> Tensor:
        """Class attention: 0 at a jet's class token and real particles, ``MASKED`` at padding.

        Shapes: -> (B_g, 1, 1 + n).
        """
        j0, j1, n = self.spans[g]
        real = torch.arange(n + 1, device=self.counts.device) <= self.counts[j0:j1, None]  # (B_g, 1 + n)
        return torch.zeros(real.shape, dtype=dtype, device=real.device).masked_fill_(~real, MASKED).unsqueeze(1)

    def pairs(self) -> tuple[Tensor, Tensor, Tensor]:
        """Every real pair i ≤ j of every jet (the self pairs included), group after group.

        Returns the packed rows of both particles, (R,) and (R,), and for every entry (b, i, j) of
        every group's (B_g, n, n) square, group after group, the index of its pair in 0..R−1 (i ≤ j
        and j ≤ i alike) or R where a particle is padded: ``pair_bias`` gathers with it.
        """
        first, second, where, r = [], [], [], 0
        for j0, j1, n in self.spans:
            i, j = torch.triu_indices(n, n, device=self.counts.device)  # (T,) with T = n (n + 1) / 2
            real = j < self.counts[j0:j1, None]  # (B_g, T): j < count implies i < count
            b, t = real.nonzero(as_tuple=True)  # (R_g,)
            start = self.starts[j0 + b]
            first.append(start + i[t])
            second.append(start + j[t])
            index = torch.full((j1 - j0, n, n), -1, dtype=torch.long, device=real.device)  # (B_g, n, n)
            ids = torch.arange(r, r + len(b), device=real.device)
            index[b, i[t], j[t]] = ids
            index[b, j[t], i[t]] = ids
            where.append(index.view(-1))  # (B_g·n·n,)
            r += len(b)
        where_all = torch.cat(where)
        return torch.cat(first), torch.cat(second), where_all.masked_fill_(where_all < 0, r)

    def pair_bias(self, values: Tensor, where: Tensor) -> list[Tensor]:
        """Per-head bias of each group's square from the values of its real pairs, ``MASKED`` at
        every pair with a padded particle. Heads lead the batch axis, as ``attend`` takes them.

        Shapes: values (R, H), where (Σ B_g n²,) from ``pairs`` -> per group (H·B_g, n, n).
        """
        h = values.shape[1]
        table = torch.cat([values, values.new_full((1, h), MASKED)])  # (R + 1, H)
        parts = table.index_select(0, where).split([(j1 - j0) * w * w for j0, j1, w in self.spans])
        # (B_g·n·n, H) -> (B_g, n, n, H) -> (H, B_g, n, n) -> (H·B_g, n, n)
        return [p.view(j1 - j0, w, w, h).permute(3, 0, 1, 2).reshape(h * (j1 - j0), w, w)
                for p, (j0, j1, w) in zip(parts, self.spans)]  # (H·B_g, n, n)


def attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, dropout_p: float = 0.0) -> Tensor:
    """softmax(q kᵀ / √d + bias) v with dropout on the weights, as ``F.scaled_dot_product_attention``.

    On CPUs the scores are one ``baddbmm`` (the bias added inside the product), the softmax runs
    without SDPA's all-masked-row checks (``bias`` is finite), and the dropout mask is the cheap
    one of ``hepnn.nn.dropout``, with the 1 / (1 − p) scale applied to the (Z, Lq, D) output instead
    of the (Z, Lq, L) weights. Elsewhere it is SDPA (fused kernels on GPUs).

    Shapes: q (Z, Lq, D), k and v (Z, L, D), bias (Z, Lq or 1, L) -> (Z, Lq, D).
    """
    if q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), dropout_p=dropout_p)
    scores = torch.baddbmm(bias.to(q.dtype), q, k.transpose(1, 2), alpha=1.0 / math.sqrt(q.shape[-1]))
    weights = torch.softmax(scores, dim=-1)  # (Z, Lq, L)
    if dropout_p == 0.0:
        return torch.bmm(weights, v)
    weights = torch.where(keep_mask(weights.shape, dropout_p, weights.device), weights, 0.0)
    return torch.bmm(weights, v).mul_(1.0 / (1.0 - dropout_p))


def ordered_pairs(counts: Tensor) -> tuple[Tensor, Tensor]:
    """Every ordered pair (i, j), i ≠ j, of the particles of each jet, for particles packed jet after
    jet (``counts[b]`` rows each); sorted by i, so each particle's edges are consecutive.

    Shapes: counts (B,) -> src (E,), dst (E,) with E = Σ c (c − 1), indices into the M packed rows.
    """
    dev = counts.device
    starts = torch.cumsum(counts, 0) - counts  # (B,)
    jet = torch.repeat_interleave(torch.arange(len(counts), device=dev), counts)  # (M,)
    local = torch.arange(len(jet), device=dev) - starts[jet]  # (M,) position within the jet
    degree = (counts - 1).clamp_min(0)[jet]  # (M,) neighbours of each particle
    src = torch.repeat_interleave(torch.arange(len(jet), device=dev), degree)  # (E,)
    k = torch.arange(len(src), device=dev) - torch.repeat_interleave(torch.cumsum(degree, 0) - degree, degree)
    dst = starts[jet[src]] + k + (k >= local[src]).long()  # skip the particle itself
    return src, dst


@dataclass
class JetPairs:
    """Every ordered pair (i, j) of the particles of each jet, the self pairs included, packed jet
    after jet as each jet's c × c square in row-major order (PELICAN's pair tensors without padding).

    Attributes (M packed particles, R = Σ c² pairs): src, dst (R,) packed particle rows of i and j;
    transpose (R,) the position of (j, i); diag (M,) the position of (i, i); pair_jet (R,) and
    row_jet (M,) the jet of each pair and particle; counts (B,) particles per jet.
    """

    src: Tensor
    dst: Tensor
    transpose: Tensor
    diag: Tensor
    pair_jet: Tensor
    row_jet: Tensor
    counts: Tensor

    @classmethod
    def from_counts(cls, counts: Tensor) -> "JetPairs":
        """Shapes: counts (B,) particles per jet, packed jet after jet."""
        dev = counts.device
        starts = torch.cumsum(counts, 0) - counts  # (B,) first particle row
        squares = counts * counts
        pair_starts = torch.cumsum(squares, 0) - squares  # (B,) first pair
        row_jet = torch.repeat_interleave(torch.arange(len(counts), device=dev), counts)  # (M,)
        pair_jet = torch.repeat_interleave(torch.arange(len(counts), device=dev), squares)  # (R,)
        k = torch.arange(len(pair_jet), device=dev) - pair_starts[pair_jet]  # (R,) position in the square
        c = counts[pair_jet]
        li, lj = k // c, k % c  # (R,) local i, j
        local = torch.arange(len(row_jet), device=dev) - starts[row_jet]  # (M,)
        diag = pair_starts[row_jet] + local * (counts[row_jet] + 1)  # (M,)
        base = starts[pair_jet]
        return cls(base + li, base + lj, pair_starts[pair_jet] + lj * c + li, diag, pair_jet, row_jet, counts)
