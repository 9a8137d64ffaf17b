"""Normalizing flow on jet-level features: neural spline flow (zuko), trained by maximum likelihood.

Durkan, Bekasov, Murray, Papamakarios, "Neural Spline Flows", arXiv:1906.04032 (monotonic rational
quadratic splines in a masked autoregressive flow, arXiv:1705.07057); implementation: zuko
(``pip install 'hepnn[flows]'``). Exact log-likelihood, so ``forward(batch)`` is the per-jet negative
log-likelihood −log p(x) (the training loss, and an anomaly score when trained on background);
``sample(n)`` inverts the flow on Gaussian draws.

Shapes: jet (B, F) -> (B,); sample(n) -> (n, F) in the preprocessed feature space.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from hepnn.data.batch import Batch
from hepnn.errors import missing_extra
from hepnn.registry import register_model


class JetFlow(nn.Module):
    """Unconditional NSF on (preprocessed) jet-level features."""

    space = "jet"

    def __init__(self, *, jet_features: int, transforms: int = 4, hidden: Sequence[int] = (64, 64),
                 bins: int = 8) -> None:
        super().__init__()
        try:
            import zuko
        except ImportError as err:
            raise missing_extra("flows", "zuko") from err
        self.flow = zuko.flows.NSF(features=jet_features, context=0, bins=bins, transforms=transforms,
                                   hidden_features=tuple(hidden))

    def forward(self, batch: Batch) -> torch.Tensor:
        return -self.flow().log_prob(batch.jet)  # (B,)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` jets: (n, F) preprocessed jet-level features."""
        return self.flow().sample((n,))


@register_model("flow_jet", inputs=("jet",), family="generative", kind="generative")
def flow_jet(*, jet_features: int = 5, transforms: int = 4, hidden: Sequence[int] = (64, 64), bins: int = 8) -> JetFlow:
    """Neural spline flow (zuko NSF, arXiv:1906.04032) on jet features: likelihood, sampler, anomaly score."""
    return JetFlow(jet_features=jet_features, transforms=transforms, hidden=hidden, bins=bins)
