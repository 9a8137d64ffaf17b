"""weaver-core network config: ParticleNet at the paper's size (arXiv:1902.08570), as in weaver's
example (jet-universe/particle_transformer networks/example_ParticleNet.py): k=16,
EdgeConv (64,64,64), (128,128,128), (256,256,256), FC 256 + dropout 0.1, no fusion.
``--network-option size "'lite'"``: ParticleNet-Lite (k=7, (32,32,32), (64,64,64), FC 128), as hepnn's
``particlenet_lite``."""

import os
import sys

import torch
from weaver.nn.model.ParticleNet import ParticleNet

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wrapper_common import get_evaluate_fn, get_loss, get_train_fn, model_info  # noqa: E402,F401


class ParticleNetWrapper(torch.nn.Module):
    def __init__(self, **kwargs) -> None:
        super().__init__()
        self.mod = ParticleNet(**kwargs)

    def forward(self, points, features, lorentz_vectors, mask):
        return self.mod(points, features, mask)


SIZES = {
    "full": dict(conv_params=[(16, (64, 64, 64)), (16, (128, 128, 128)), (16, (256, 256, 256))], fc_params=[(256, 0.1)]),
    "lite": dict(conv_params=[(7, (32, 32, 32)), (7, (64, 64, 64))], fc_params=[(128, 0.1)]),
}


def get_model(data_config, size="full", **kwargs):
    model = ParticleNetWrapper(
        input_dims=len(data_config.input_dicts["pf_features"]),
        num_classes=len(data_config.label_value),
        **SIZES[size],
        use_fusion=False,
        use_fts_bn=True,
        use_counts=True,
    )
    return model, model_info(data_config)
