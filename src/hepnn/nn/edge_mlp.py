"""LorentzNet's per-edge MLPs on packed real edges, in chunks, recomputed in the backward pass.

One LGEB (Gong et al., arXiv:2201.08187) evaluates, for every ordered pair (i, j) of real particles,

    m_ij  = ReLU(W_e ReLU(a_i + b_j + W_inv inv_ij) + b_e)        a = e_i(h), b = e_j(h) per particle
    agg_i = Σ_j σ(w_m · m_ij + b_m) m_ij                            (φ_m gate times message)
    dx_i  = Σ_j (w_x2 · ReLU(W_x1 m_ij + b_x1) + b_x2) x_j          (φ_x, all blocks but the last)

With autograd this stores about ten (E, D) tensors per block (E ≈ B N², 300 MB each for a batch of
256 jets at N = 66) and passes over each in memory several times: the step is bound by memory
traffic, not by the two (E, D) × (D, D) products. ``EdgeMessages`` instead runs the edges in chunks
that fit in the cache, keeps only the (M, D) sums, and in the backward pass recomputes each chunk's
messages (two more products) before forming the gradients by hand. The arithmetic grows by a third;
the memory traffic and the memory shrink by an order of magnitude. Gradients equal autograd's
(tested against the plain formulas in float64).
"""

from __future__ import annotations

import torch
from torch import Tensor

CHUNK = 8192  # edges per chunk on a CPU: a (CHUNK, D) float32 tensor is ~2 MB at D = 72, cache-sized
CHUNK_GPU = 1 << 20  # on a GPU: few large kernels (launch overhead), ~300 MB per (CHUNK, D) tensor


def _chunk(t: Tensor) -> int:
    return CHUNK if t.device.type == "cpu" else CHUNK_GPU


def _messages(a, b, inv, w_inv_t, w_e_t, b_e, src, dst):
    """ReLU(a_i + b_j + W_inv inv) and the message m of a chunk (weights passed transposed and
    contiguous: BLAS runs ~1.3x faster than on transposed views). -> 2 × (C, D)."""
    r1 = a.index_select(0, src).add_(b.index_select(0, dst)).addmm_(inv, w_inv_t).relu_()  # (C, D)
    return r1, torch.addmm(b_e, r1, w_e_t).relu_()  # (C, D)


def _relu_grad(grad: Tensor, out: Tensor) -> Tensor:
    """grad where the ReLU's output is > 0, else 0: one fused pass (a bool mask product is ~10x slower)."""
    return torch.ops.aten.threshold_backward(grad, out, 0)


class EdgeMessages(torch.autograd.Function):
    """(agg (M, D), dx (M, 4)) of one LGEB from per-particle a, b (M, D), edge invariants inv (E, 2),
    coordinates x (M, 4) and the edges src → dst (E,), as in the module docstring. ``w_x1`` None:
    no coordinate update (dx is zeros)."""

    @staticmethod
    def forward(ctx, a, b, inv, x, src, dst, w_inv, w_e, b_e, w_m, b_m, w_x1, b_x1, w_x2, b_x2):  # type: ignore[override]
        agg = a.new_zeros(a.shape)  # (M, D)
        dx = x.new_zeros(x.shape)  # (M, 4)
        with_x, step = w_x1 is not None, _chunk(a)
        w_inv_t, w_e_t = w_inv.T.contiguous(), w_e.T.contiguous()  # (2, D), (D, D)
        w_x1_t = w_x1.T.contiguous() if with_x else None
        for s in range(0, len(src), step):
            i, j = src[s:s + step], dst[s:s + step]
            _, m = _messages(a, b, inv[s:s + step], w_inv_t, w_e_t, b_e, i, j)
            gate = torch.sigmoid(torch.addmv(b_m, m, w_m))  # (C,)
            if with_x:
                z = torch.addmm(b_x1, m, w_x1_t).relu_()  # (C, D)
                px = torch.addmv(b_x2, z, w_x2)  # (C,)
                dx.index_add_(0, i, x.index_select(0, j).mul_(px[:, None]))
            agg.index_add_(0, i, m.mul_(gate[:, None]))
        ctx.save_for_backward(a, b, inv, x, src, dst, w_inv, w_e, b_e, w_m, b_m, w_x1, b_x1, w_x2, b_x2)
        ctx.with_x = with_x
        return agg, dx

    @staticmethod
    def backward(ctx, g_agg, g_dx):  # type: ignore[override]
        a, b, inv, x, src, dst, w_inv, w_e, b_e, w_m, b_m, w_x1, b_x1, w_x2, b_x2 = ctx.saved_tensors
        with_x = ctx.with_x
        g = {name: torch.zeros_like(t) for name, t in
             (("a", a), ("b", b), ("x", x), ("w_e", w_e), ("b_e", b_e), ("w_m", w_m), ("b_m", b_m))}
        # the (2, ·) factors are formed transposed: BLAS is ~4x faster with the short side leading
        g_w_inv = w_inv.new_zeros(w_inv.shape[::-1])  # (2, D)
        g_inv = inv.new_empty(inv.shape[::-1])  # (2, E)
        if with_x:
            g.update(w_x1=torch.zeros_like(w_x1), b_x1=torch.zeros_like(b_x1),
                     w_x2=torch.zeros_like(w_x2), b_x2=torch.zeros_like(b_x2))
        step = _chunk(a)
        w_inv_t, w_e_t = w_inv.T.contiguous(), w_e.T.contiguous()  # (2, D), (D, D)
        w_x1_t = w_x1.T.contiguous() if with_x else None
        for s in range(0, len(src), step):
            i, j, inv_c = src[s:s + step], dst[s:s + step], inv[s:s + step]
            r1, m = _messages(a, b, inv_c, w_inv_t, w_e_t, b_e, i, j)  # recomputed (C, D)
            gate = torch.sigmoid(torch.addmv(b_m, m, w_m))  # (C,)
            ga = g_agg.index_select(0, i)  # (C, D)
            g_sm = (ga * m).sum(1).mul_(gate * (1 - gate))  # (C,) through the sigmoid
            g["w_m"].addmv_(m.T, g_sm)
            g["b_m"] += g_sm.sum()
            g_m = ga.mul_(gate[:, None]).addr_(g_sm, w_m)  # (C, D)
            if with_x:
                z = torch.addmm(b_x1, m, w_x1_t).relu_()  # (C, D), recomputed
                gdx = g_dx.index_select(0, i)  # (C, 4)
                g_px = (gdx * x.index_select(0, j)).sum(1)  # (C,)
                g["x"].index_add_(0, j, gdx.mul_(torch.addmv(b_x2, z, w_x2)[:, None]))
                g["w_x2"].addmv_(z.T, g_px)
                g["b_x2"] += g_px.sum()
                g_z = _relu_grad(torch.outer(g_px, w_x2), z)  # (C, D)
                g["w_x1"].addmm_(g_z.T, m)
                g["b_x1"] += g_z.sum(0)
                g_m.addmm_(g_z, w_x1)
            g_h = _relu_grad(g_m, m)  # (C, D) through the message ReLU
            g["w_e"].addmm_(g_h.T, r1)
            g["b_e"] += g_h.sum(0)
            g_pre = _relu_grad(torch.mm(g_h, w_e), r1)  # (C, D) through the first ReLU
            g["a"].index_add_(0, i, g_pre)
            g["b"].index_add_(0, j, g_pre)
            g_w_inv.addmm_(inv_c.T, g_pre)
            g_inv[:, s:s + step] = torch.mm(w_inv.T, g_pre.T)  # (2, C)
        return (g["a"], g["b"], g_inv.T, g["x"], None, None, g_w_inv.T, g["w_e"], g["b_e"], g["w_m"], g["b_m"],
                g.get("w_x1"), g.get("b_x1"), g.get("w_x2"), g.get("b_x2"))


def edge_messages(a: Tensor, b: Tensor, inv: Tensor, x: Tensor, src: Tensor, dst: Tensor, w_inv: Tensor,
                  w_e: Tensor, b_e: Tensor, w_m: Tensor, b_m: Tensor, w_x1: Tensor | None = None,
                  b_x1: Tensor | None = None, w_x2: Tensor | None = None,
                  b_x2: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``EdgeMessages``: shapes a, b (M, D), inv (E, 2), x (M, 4), src/dst (E,), w_inv (D, 2),
    w_e (D, D), b_e (D,), w_m (D,), b_m (1,), w_x1 (D, D), b_x1 (D,), w_x2 (D,), b_x2 (1,)
    -> agg (M, D), dx (M, 4).

    Under autocast the tensors are cast to the autocast dtype first and the function runs in it (its
    hand-written backward cannot mix dtypes the way autocast's per-op casting would)."""
    tensors = [a, b, inv, x, w_inv, w_e, b_e, w_m, b_m, w_x1, b_x1, w_x2, b_x2]
    dev = a.device.type
    if torch.is_autocast_enabled(dev):
        dtype = torch.get_autocast_dtype(dev)
        tensors = [None if t is None else t.to(dtype) for t in tensors]
    a, b, inv, x, w_inv, w_e, b_e, w_m, b_m, w_x1, b_x1, w_x2, b_x2 = tensors
    with torch.autocast(dev, enabled=False):
        return EdgeMessages.apply(a, b, inv, x, src, dst, w_inv, w_e, b_e, w_m, b_m, w_x1, b_x1, w_x2, b_x2)
