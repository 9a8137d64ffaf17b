"""hepnn.nn.norm: MaskedBatchNorm equals torch's BatchNorm1d over the real entries only (outputs,
gradients, running averages, eval mode), never depends on padding; batch_norm_rows equals it with a
full mask; uses_batch_norm finds either kind of batch norm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hepnn.nn.norm import MaskedBatchNorm, batch_norm_rows, uses_batch_norm

C = 4


def jets(seed=0, b=3, n=6, counts=(6, 3, 1)):
    """x (B, N, C) float64 with shifted, scaled channels; mask (B, N) with ``counts`` real particles."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, C, generator=g, dtype=torch.float64) * torch.tensor([1.0, 3.0, 0.2, 5.0]) + 2.0
    mask = torch.arange(n) < torch.tensor(counts).unsqueeze(1)  # (B, N)
    return x, mask


def pair(momentum=0.1, seed=0):
    """A MaskedBatchNorm and a torch BatchNorm1d with the same non-trivial affine parameters."""
    ours = MaskedBatchNorm(C, momentum=momentum).double()
    ref = nn.BatchNorm1d(C, momentum=momentum).double()
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        w, b = torch.rand(C, generator=g, dtype=torch.float64) + 0.5, torch.randn(C, generator=g, dtype=torch.float64)
        ours.weight.copy_(w), ref.weight.copy_(w)
        ours.bias.copy_(b), ref.bias.copy_(b)
    return ours, ref


def test_training_outputs_and_running_averages_match_batchnorm_on_real_entries():
    ours, ref = pair(momentum=0.3)
    for step in range(3):  # running averages compound over steps
        x, mask = jets(seed=step)
        out = ours(x, mask)
        torch.testing.assert_close(out[mask], ref(x[mask]), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours.running_mean, ref.running_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours.running_var, ref.running_var, rtol=1e-12, atol=1e-12)


def test_gradients_match_batchnorm_on_real_entries():
    ours, ref = pair()
    x, mask = jets()
    xa, xb = x.clone().requires_grad_(True), x[mask].clone().requires_grad_(True)
    target = torch.randn(int(mask.sum()), C, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    (ours(xa, mask)[mask] * target).sum().backward()
    (ref(xb) * target).sum().backward()
    torch.testing.assert_close(xa.grad[mask], xb.grad, rtol=1e-10, atol=1e-12)
    assert torch.equal(xa.grad[~mask], torch.zeros_like(xa.grad[~mask]))  # padding never feeds the loss
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad, rtol=1e-10, atol=1e-12)


def test_padding_content_and_amount_never_matter():
    x, mask = jets()
    a, _ = pair()
    ref_out = a(x, mask)
    g = torch.Generator().manual_seed(4)
    garbage = torch.where(mask.unsqueeze(-1), x, 1e4 * torch.randn(x.shape, generator=g, dtype=x.dtype))
    wide = torch.cat([garbage, 1e4 * torch.ones(3, 5, C, dtype=x.dtype)], dim=1)  # 5 more padded slots
    wide_mask = torch.cat([mask, torch.zeros(3, 5, dtype=torch.bool)], dim=1)
    b, _ = pair()
    out = b(wide, wide_mask)
    torch.testing.assert_close(out[:, :6][mask], ref_out[mask], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(b.running_mean, a.running_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(b.running_var, a.running_var, rtol=1e-12, atol=1e-12)


def test_mask_broadcasts_over_edges():
    """Edge tensors (B, N, k, C) with a per-particle mask (B, N, 1): statistics over the real particles' edges."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 7, 3, C, generator=g, dtype=torch.float64) * 3 + 1  # (B, N, k, C)
    mask = torch.rand(4, 7, 1, generator=g) < 0.6  # (B, N, 1)
    full = mask.expand(4, 7, 3)
    ours, ref = pair()
    torch.testing.assert_close(ours(x, mask)[full], ref(x[full]), rtol=1e-12, atol=1e-12)


def test_eval_uses_running_averages_and_leaves_them_alone():
    ours, ref = pair()
    x, mask = jets()
    ours(x, mask), ref(x[mask])  # one training step moves the running averages
    ours.eval(), ref.eval()
    mean, var = ours.running_mean.clone(), ours.running_var.clone()
    x2, mask2 = jets(seed=7)
    out = ours(x2, mask2)
    by_hand = (x2 - mean) / torch.sqrt(var + ours.eps) * ours.weight + ours.bias
    torch.testing.assert_close(out, by_hand, rtol=1e-12, atol=1e-12)  # elementwise, padded slots too
    torch.testing.assert_close(out[mask2], ref(x2[mask2]), rtol=1e-12, atol=1e-12)
    assert torch.equal(ours.running_mean, mean) and torch.equal(ours.running_var, var)


def test_batch_norm_rows_equals_a_full_mask():
    h = jets()[0].reshape(-1, C)  # (M, C) packed rows, all real
    a, _ = pair(momentum=0.2)
    b, _ = pair(momentum=0.2)
    torch.testing.assert_close(batch_norm_rows(a, h), b(h, torch.ones(len(h), dtype=torch.bool)), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a.running_mean, b.running_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a.running_var, b.running_var, rtol=1e-12, atol=1e-12)
    a.eval(), b.eval()
    torch.testing.assert_close(batch_norm_rows(a, h), b(h, torch.ones(len(h), dtype=torch.bool)), rtol=1e-12, atol=1e-12)


def test_batch_norm_rows_with_one_row_in_training_does_not_raise():
    """torch's batch norm refuses one value per channel in training; the masked path takes over."""
    norm, _ = pair()
    row = torch.tensor([[1.0, -2.0, 3.0, 0.5]], dtype=torch.float64)
    torch.testing.assert_close(batch_norm_rows(norm, row), norm.bias.detach().unsqueeze(0))  # x - mean(x) = 0


@pytest.mark.parametrize("model, expected", [
    (nn.Sequential(nn.Linear(2, 3), nn.ReLU()), False),
    (nn.Sequential(nn.Linear(2, 3), nn.LayerNorm(3)), False),
    (nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)), True),
    (nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))), True),
    (nn.ModuleDict({"inner": nn.Sequential(nn.Linear(2, 3), MaskedBatchNorm(3))}), True),
])
def test_uses_batch_norm(model, expected):
    assert uses_batch_norm(model) is expected


def test_batch_statistics_are_float32_under_fp16_autocast():
    """~10⁵ rows (ParT's real pairs in one batch): the sums of the statistics overflow fp16 (65,504) if
    autocast runs them as half-precision products; they are taken in float32 as without autocast."""
    norm = MaskedBatchNorm(C)
    x = torch.randn(80_000, C, generator=torch.Generator().manual_seed(0)) * 3.0 + 1.0
    mask = torch.ones(80_000, dtype=torch.bool)
    expected = norm._batch_stats(x, mask)
    with torch.autocast("cpu", dtype=torch.float16):
        mean, var = norm._batch_stats(x, mask)
        out = norm(x, mask)
    assert mean.dtype == var.dtype == torch.float32
    torch.testing.assert_close(mean, expected[0], rtol=0, atol=0)
    torch.testing.assert_close(var, expected[1], rtol=0, atol=0)
    assert torch.isfinite(out).all()


def test_batch_statistics_of_half_inputs_are_taken_in_float32():
    norm = MaskedBatchNorm(C)
    x = (torch.randn(100_000, C, generator=torch.Generator().manual_seed(1)) * 2.0).to(torch.float16)
    mean, var = norm._batch_stats(x, torch.ones(100_000, dtype=torch.bool))
    ref = x.double()
    assert mean.dtype == torch.float32 and torch.isfinite(var).all()
    torch.testing.assert_close(mean.double(), ref.mean(0), rtol=0, atol=1e-5)
    torch.testing.assert_close(var.double(), ref.var(0, unbiased=False), rtol=1e-4, atol=0)
