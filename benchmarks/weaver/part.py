"""weaver-core network config: Particle Transformer at its default size (arXiv:2202.03772), as in
weaver's example (jet-universe/particle_transformer networks/example_ParticleTransformer.py):
width 128 (FFN 512), 8 heads, 8 particle blocks + 2 class-attention blocks, 4 pair features
(ln kT, ln z, ln ΔR, ln m²) embedded by (64, 64, 64).
``--network-option size "'lite'"``: hepnn's ``part_lite`` (width 64, FFN 128, 4 heads, 3 + 1 blocks,
pair embedding (32, 32), no dropout)."""

import os
import sys

import torch
from weaver.nn.model.ParticleTransformer import ParticleTransformer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wrapper_common import get_evaluate_fn, get_loss, get_train_fn, model_info  # noqa: E402,F401


class ParticleTransformerWrapper(torch.nn.Module):
    def __init__(self, **kwargs) -> None:
        super().__init__()
        self.mod = ParticleTransformer(**kwargs)

    @torch.jit.ignore
    def no_weight_decay(self):
        return {"mod.cls_token"}

    def forward(self, points, features, lorentz_vectors, mask):
        return self.mod(features, v=lorentz_vectors, mask=mask)


LITE = dict(embed_dims=[64, 64], pair_embed_dims=[32, 32], num_heads=4, num_layers=3, num_cls_layers=1,
            block_params={"ffn_ratio": 2, "dropout": 0, "attn_dropout": 0, "activation_dropout": 0})


def get_model(data_config, size="full", **kwargs):
    cfg = dict(
        input_dim=len(data_config.input_dicts["pf_features"]),
        num_classes=len(data_config.label_value),
        pair_input_dim=4,
        use_pre_activation_pair=False,
        embed_dims=[128, 512, 128],
        pair_embed_dims=[64, 64, 64],
        num_heads=8,
        num_layers=8,
        num_cls_layers=2,
        block_params=None,
        cls_block_params={"dropout": 0, "attn_dropout": 0, "activation_dropout": 0},
        fc_params=[],
        activation="gelu",
        trim=True,
        for_inference=False,
    )
    if size == "lite":
        cfg.update(LITE)
    cfg.update(**kwargs)
    model = ParticleTransformerWrapper(**cfg)
    return model, model_info(data_config)
