"""ParticleNet: jet tagging on particle clouds with dynamic graph CNNs.

Qu & Gouskos, "ParticleNet: Jet Tagging via Particle Clouds", arXiv:1902.08570.

    x⁰ = BN(x);  xˡ = EdgeConvₗ(points=pˡ, xˡ⁻¹)   p¹ = (Δη, Δφ),  pˡ = xˡ⁻¹ for l > 1
    y  = FC(mean_i x_i^L)                          FC: Linear → ReLU → Dropout → Linear

Each EdgeConv block (``hepnn.nn.edgeconv.EdgeConv``) takes the k nearest neighbours in its own
coordinates (Δη, Δφ for the first block, the learned features after), applies an MLP to the edge
features (x_i, x_j − x_i), averages over neighbours and adds a shortcut. (Δη, Δφ) are computed
from ``p4`` relative to the jet axis (the sum of the real constituents), so the graph does not
depend on how ``x`` was preprocessed.

Defaults follow the paper and its authors' reference code (hqucms/ParticleNet): 366k parameters
(ParticleNet) and 26k (Lite) for 7 input features and 2 classes. ``fusion=True`` adds the
channel-wise fusion of the later weaver implementation: f = ReLU(BN(W [x¹, …, x^L])), pooled
instead of x^L, width ⌊Σ widths / 128⌋·128 clipped to [128, 1024].

Normalization: every BatchNorm of the paper is a ``MaskedBatchNorm`` (statistics over real
particles/edges only, running averages in eval mode), so padding never changes an output.

Shapes: x (B, N, C), p4 (B, N, 4), mask (B, N) -> logits (B, num_classes).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from hepnn.data.batch import Batch
from hepnn.nn.edgeconv import EdgeConv
from hepnn.nn.norm import MaskedBatchNorm
from hepnn.nn.layers import masked_mean
from hepnn.registry import register_model, register_variant

PAPER_BLOCKS = ((64, 64, 64), (128, 128, 128), (256, 256, 256))
LITE_BLOCKS = ((32, 32, 32), (64, 64, 64))


class ParticleNet(nn.Module):
    """ParticleNet: input masked BN, EdgeConv blocks, [fusion], masked average pooling, FC head.

    Args:
        in_features: particle feature channels C.
        num_classes: output logits.
        blocks: edge-MLP widths per EdgeConv block.
        k: neighbours per particle in every block.
        fc: width of the hidden fully connected layer. dropout: after it.
        fusion: pool the Linear + BN + ReLU mix of all block outputs instead of the last one.
    """

    def __init__(
        self,
        *,
        in_features: int,
        num_classes: int,
        blocks: Sequence[Sequence[int]] = PAPER_BLOCKS,
        k: int = 16,
        fc: int = 256,
        dropout: float = 0.1,
        fusion: bool = False,
    ) -> None:
        super().__init__()
        self.input_norm = MaskedBatchNorm(in_features)
        widths = [in_features, *(b[-1] for b in blocks)]
        self.blocks = nn.ModuleList(
            EdgeConv(in_features=widths[i], out_features=tuple(b), k=k) for i, b in enumerate(blocks)
        )
        self.fusion: nn.Linear | None = None
        out = widths[-1]
        if fusion:
            total = sum(widths[1:])
            out = min(max(total // 128 * 128, 128), 1024)
            self.fusion = nn.Linear(total, out, bias=False)
            self.fusion_norm = MaskedBatchNorm(out)
        self.head = nn.Sequential(nn.Linear(out, fc), nn.ReLU(), nn.Dropout(dropout), nn.Linear(fc, num_classes))

    def forward(self, batch: Batch) -> torch.Tensor:
        from hepnn.data.features import particle_features

        mask = batch.mask.bool()
        points = particle_features(batch.p4.to(batch.x.dtype), mask, ["deta", "dphi"])  # (B, N, 2)
        h = self.input_norm(batch.x, mask)  # (B, N, C)
        outs = []
        for block in self.blocks:
            h = block(points, h, mask)  # (B, N, H_l), padded rows 0
            outs.append(h)
            points = h  # later blocks find neighbours in the learned feature space
        if self.fusion is not None:
            h = torch.relu(self.fusion_norm(self.fusion(torch.cat(outs, dim=-1)), mask))  # (B, N, F)
        return self.head(masked_mean(h, mask))  # (B, F) -> (B, K)


@register_model("particlenet", inputs=("x", "p4", "mask"), family="gnn", tags=("permutation",))
def particlenet(
    *,
    in_features: int = 7,
    num_classes: int = 2,
    blocks: Sequence[Sequence[int]] = PAPER_BLOCKS,
    k: int = 16,
    fc: int = 256,
    dropout: float = 0.1,
    fusion: bool = False,
) -> ParticleNet:
    """ParticleNet (arXiv:1902.08570): k=16, EdgeConv (64,64,64),(128,128,128),(256,256,256), FC 256."""
    return ParticleNet(in_features=in_features, num_classes=num_classes, blocks=blocks, k=k, fc=fc,
                       dropout=dropout, fusion=fusion)


register_variant("particlenet_lite", of="particlenet", blocks=LITE_BLOCKS, k=7, fc=128,
                 doc="ParticleNet-Lite (arXiv:1902.08570): k=7, EdgeConv (32,32,32),(64,64,64), FC 128.")
