"""The recurrent taggers read each jet's real particles in the requested order."""

from __future__ import annotations

import torch

from hepnn.data.batch import Batch
from hepnn.registry import create_model


def test_softest_first_reads_the_real_particles_reversed():
    torch.manual_seed(0)
    x = torch.randn(3, 6, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]], dtype=torch.bool)
    x = x * mask.unsqueeze(-1)
    rev = create_model("gru", in_features=4, hidden=8, softest_first=True).eval()
    plain = create_model("gru", in_features=4, hidden=8).eval()
    plain.load_state_dict(rev.state_dict())
    by_hand = torch.zeros_like(x)
    for b, n in enumerate(mask.sum(1).tolist()):  # reverse the first n rows, keep the padding in place
        by_hand[b, :n] = x[b, :n].flip(0)
    with torch.no_grad():
        out = rev(Batch(x=x, mask=mask))
        ref = plain(Batch(x=by_hand, mask=mask))
        assert torch.allclose(out, ref, atol=1e-6)
        assert not torch.allclose(out, plain(Batch(x=x, mask=mask)), atol=1e-3)  # the order matters
