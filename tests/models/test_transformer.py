"""Transformer encoder: the block equals torch's own pre-LN encoder layer; class-token head; learning."""

from __future__ import annotations


import pytest
import torch

from hepnn.data.batch import Batch
from hepnn.nn.attention import TransformerBlock, attention_mask
from hepnn.registry import create_model
from tests.conftest import assert_beats_mass, train_metrics


def test_block_equals_torch_pre_ln_encoder_layer():
    torch.manual_seed(0)
    dim, heads = 16, 4
    ours = TransformerBlock(dim, heads, expansion=4, dropout=0.0).double().eval()
    ref = torch.nn.TransformerEncoderLayer(
        dim, heads, dim_feedforward=4 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    ).double().eval()
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(torch.cat([ours.attn.q.weight, ours.attn.kv.weight]))
        ref.self_attn.in_proj_bias.copy_(torch.cat([ours.attn.q.bias, ours.attn.kv.bias]))
        ref.self_attn.out_proj.load_state_dict(ours.attn.proj.state_dict())
        ref.linear1.load_state_dict(ours.mlp[0].state_dict())
        ref.linear2.load_state_dict(ours.mlp[3].state_dict())
        ref.norm1.load_state_dict(ours.norm1.state_dict())
        ref.norm2.load_state_dict(ours.norm2.state_dict())
    x = torch.randn(3, 7, dim, dtype=torch.float64)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] + [0] * 6], dtype=torch.bool)
    with torch.no_grad():
        a = ours(x, attention_mask(mask, query_mask=mask, dtype=x.dtype))
        b = ref(x, src_key_padding_mask=~mask)
    torch.testing.assert_close(a[mask], b[mask], rtol=1e-10, atol=1e-10)


def make_batch(n_jets=4, n=9, pad=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    counts = torch.tensor([9, 5, 1, 3])[:n_jets]
    mask = torch.arange(n + pad)[None] < counts[:, None]
    x = torch.randn(n_jets, n, 5, generator=g, dtype=torch.float64)
    x = torch.cat([x, torch.zeros(n_jets, pad, 5, dtype=x.dtype)], 1) * mask[..., None]
    return Batch(x=x, mask=mask)


@pytest.mark.parametrize("head", ["pool", "cls"])
def test_heads_are_padding_and_permutation_invariant(head):
    torch.manual_seed(0)
    model = create_model("transformer", in_features=5, dim=16, num_heads=2, num_layers=2, head=head).double().eval()
    batch = make_batch()
    padded = make_batch(pad=6)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(1))
    shuffled = Batch(x=batch.x[:, perm], mask=batch.mask[:, perm])
    with torch.no_grad():
        out = model(batch)
        torch.testing.assert_close(out, model(padded), rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(out, model(shuffled), rtol=1e-10, atol=1e-10)
    assert out.shape == (4, 2) and torch.isfinite(out).all()


def test_unknown_head_is_an_error():
    with pytest.raises(ValueError, match="head"):
        create_model("transformer", head="max")


@pytest.mark.slow
def test_transformer_learns_top_tagging(sample_path, tmp_path):
    """Measured AUC 0.933 against the jet mass's 0.922 (6 epochs of batch 64, 2 blocks, N ≤ 48, seed 0)."""
    metrics = train_metrics("configs/top_tagging/transformer.yaml",
                            ["train.epochs=6", "model.params.num_layers=2", "data.max_particles=48", "data.batch_size=64"],
                            tmp_path / "run")
    assert_beats_mass(metrics)
