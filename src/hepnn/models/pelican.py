"""PELICAN: Bogatskiy, Hoffman, Miller, Offermann, "PELICAN: Permutation Equivariant and Lorentz
Invariant or Covariant Aggregator Network for Particle Physics", arXiv:2211.00454.

The network sees the particles only through their pairwise Minkowski products, so it is exactly
Lorentz invariant; every layer after that is permutation equivariant:

    d_ij = p_i · p_j                                             (B, N, N)
    T⁰_ij = f_α(d_ij) = sgn(d) ((1 + |d|)^α − 1) / α             one channel per learned α
    Tˡ⁺¹ = Dropout(Eq2to2(BN(LeakyReLU(Linear(Tˡ)))))            5 blocks, 15 aggregations each
    logits = MLP(Eq2to0(BN(LeakyReLU(Linear(T)))))               invariant readout (trace, total)

Aggregations run over real particles and are normalized as means times (N / 49)^α (49: the average
multiplicity of the top-tagging data set, PELICAN's ``nobj_avg``). With ``spurions=True`` the two
beams (1, 0, 0, ±1) are added as particles and two label channels (is_beam_i, is_beam_j) are
appended to T⁰; this keeps only rotations about the beam axis as an exact symmetry.

Layout (why it is fast): the network runs on the real pairs packed into rows (R = Σ c² for jets
of c particles, ``hepnn.nn.packed.JetPairs``) with fused batch norms over them; random batches of
top-tagging jets padded to their largest jet are ~70 % padded pairs. The dense (B, N, N) layout
(``forward_dense``) is kept for ``torch.export`` / ONNX, where shapes must not depend on the data.

Shapes: p4 (B, N, 4) GeV, mask (B, N) -> (B, num_classes).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hepnn.data.batch import Batch
from hepnn.nn.dropout import Dropout
from hepnn.nn.equivariant import Eq2to0, Eq2to2
from hepnn.nn.layers import mlp
from hepnn.nn.lorentz import add_beams, minkowski_dot, minkowski_gram
from hepnn.nn.norm import MaskedBatchNorm, batch_norm_rows
from hepnn.nn.packed import JetPairs
from hepnn.registry import register_model, register_variant


class InputEncoder(nn.Module):
    """f_α(d) = sgn(d) ((1 + |d|)^α − 1) / α for learned α > 0 (α → 0: ln(1 + |d|)).

    Shapes: d (B, N, N) -> (B, N, N, C).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.linspace(0.05, 0.5, channels))

    def forward(self, d: Tensor) -> Tensor:
        a = self.alpha.abs().to(d.dtype) + 1e-3  # (C,)
        d = d.unsqueeze(-1)  # (B, N, N, 1)
        return torch.sign(d) * torch.expm1(a * torch.log1p(d.abs())) / a


class Message(nn.Module):
    """Pointwise Linear → LeakyReLU → masked BatchNorm on every pair. (B, N, N, C) -> (B, N, N, M);
    ``packed``: (R, C) -> (R, M)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, out_channels)
        self.act = nn.LeakyReLU(0.01)
        self.norm = MaskedBatchNorm(out_channels)

    def forward(self, t: Tensor, pair_mask: Tensor) -> Tensor:
        return self.norm(self.act(self.linear(t)), pair_mask)

    def packed(self, t: Tensor) -> Tensor:
        return batch_norm_rows(self.norm, self.act(self.linear(t)))


class PELICAN(nn.Module):
    """PELICAN classifier on pairwise Minkowski products.

    Args:
        num_classes: outputs. embed_channels: learned powers α of the input encoder.
        msg_channels, eq_channels: widths of the message layers and of the Eq2to2 outputs.
        num_layers: Eq2to2 blocks. readout: width of the invariant readout before the final MLP.
        dropout: after each Eq2to2 block. spurions: add the beams. scale: multiplies p4 (GeV).
        n_ref: reference multiplicity of the aggregator normalization.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        embed_channels: int = 10,
        msg_channels: int = 60,
        eq_channels: int = 35,
        num_layers: int = 5,
        readout: int = 60,
        dropout: float = 0.05,
        spurions: bool = True,
        scale: float = 1.0,
        n_ref: float = 49.0,
    ) -> None:
        super().__init__()
        self.spurions, self.scale = spurions, scale
        self.encoder = InputEncoder(embed_channels)
        self.input_norm = MaskedBatchNorm(embed_channels)
        widths = [embed_channels + 2 * spurions, *[eq_channels] * num_layers]
        self.messages = nn.ModuleList([Message(w, msg_channels) for w in widths[:-1]])
        self.eqs = nn.ModuleList([Eq2to2(msg_channels, eq_channels, n_ref=n_ref) for _ in range(num_layers)])
        self.drop = Dropout(dropout)
        self.out_message = Message(widths[-1], msg_channels)
        self.readout = Eq2to0(msg_channels, readout, n_ref=n_ref)
        self.head = mlp([readout, readout, num_classes], act="leaky_relu")

    def forward(self, batch: Batch) -> Tensor:
        if torch.compiler.is_exporting():  # shapes must not depend on the data
            return self.forward_dense(batch)
        return self.forward_packed(batch)

    def forward_packed(self, batch: Batch) -> Tensor:
        """Real pairs packed into rows."""
        mask = batch.mask.bool()
        p4 = batch.p4 * self.scale * mask.unsqueeze(-1).to(batch.p4.dtype)  # (B, N, 4)
        is_beam = torch.zeros_like(mask)
        if self.spurions:
            p4, mask, is_beam = add_beams(p4, mask)  # (B, N + 2, 4), (B, N + 2), (B, N + 2)
        rows = mask.reshape(-1).nonzero().squeeze(1)  # (M,) jet after jet
        pairs = JetPairs.from_counts(mask.sum(1))
        x = p4.reshape(-1, 4).index_select(0, rows)  # (M, 4)
        d = minkowski_dot(x.index_select(0, pairs.src), x.index_select(0, pairs.dst))  # (R,) p_i · p_j
        t = batch_norm_rows(self.input_norm, self.encoder(d))  # (R, E)
        if self.spurions:
            beam = is_beam.reshape(-1).index_select(0, rows).to(t.dtype)  # (M,)
            t = torch.cat([t, torch.stack([beam[pairs.src], beam[pairs.dst]], -1)], dim=-1)  # (R, E + 2)
        for message, eq in zip(self.messages, self.eqs):
            t = self.drop(eq.packed(message.packed(t), pairs))  # (R, eq_channels)
        return self.head(self.readout.packed(self.out_message.packed(t), pairs))  # (B, K)

    def forward_dense(self, batch: Batch) -> Tensor:
        """The (B, N, N) layout: what ``torch.export`` records (no data-dependent shape)."""
        mask = batch.mask.bool()
        p4 = batch.p4 * self.scale * mask.unsqueeze(-1).to(batch.p4.dtype)  # (B, N, 4)
        if self.spurions:
            p4, mask, is_beam = add_beams(p4, mask)  # (B, N + 2, 4), (B, N + 2), (B, N + 2)
        pair_mask = mask[:, :, None] & mask[:, None, :]  # (B, N, N)
        t = self.input_norm(self.encoder(minkowski_gram(p4)), pair_mask)  # (B, N, N, E)
        if self.spurions:
            n = mask.shape[1]
            beam = is_beam.to(t.dtype)
            labels = torch.stack([beam[:, :, None].expand(-1, -1, n), beam[:, None, :].expand(-1, n, -1)], -1)
            t = torch.cat([t, labels], dim=-1)  # (B, N, N, E + 2)
        t = t * pair_mask.unsqueeze(-1).to(t.dtype)
        for message, eq in zip(self.messages, self.eqs):
            t = self.drop(eq(message(t, pair_mask), mask))  # (B, N, N, eq_channels)
        inv = self.readout(self.out_message(t, pair_mask), mask)  # (B, readout)
        return self.head(inv)  # (B, K)


@register_model("pelican", inputs=("p4", "mask"), family="lorentz", tags=("permutation", "lorentz"))
def pelican(
    *,
    num_classes: int = 2,
    embed_channels: int = 10,
    msg_channels: int = 60,
    eq_channels: int = 35,
    num_layers: int = 5,
    readout: int = 60,
    dropout: float = 0.05,
    spurions: bool = True,
    scale: float = 1.0,
    n_ref: float = 49.0,
) -> PELICAN:
    """PELICAN (arXiv:2211.00454): Minkowski products, 5 permutation-equivariant 2→2 blocks, 2→0 readout."""
    return PELICAN(
        num_classes=num_classes, embed_channels=embed_channels, msg_channels=msg_channels,
        eq_channels=eq_channels, num_layers=num_layers, readout=readout, dropout=dropout,
        spurions=spurions, scale=scale, n_ref=n_ref,
    )  # fmt: skip


register_variant("pelican_lite", of="pelican", embed_channels=6, msg_channels=16, eq_channels=12, num_layers=2,
                 readout=24, dropout=0.0, doc="PELICAN for CPUs: 2 Eq2→2 blocks, message width 16, equivariant width 12.")
