"""hepnn.compress.recipe: which Linear layers a recipe may name (MultiheadAttention's own projection
skipped) and reading quantization.json (unknown schemes and damaged files refused). Applying a recipe
is tested against the float model in tests/compress/test_quantize.py."""

from __future__ import annotations

import json

import pytest
from torch import nn

from hepnn.compress.recipe import RECIPE_FILE, SCHEMES, linear_layers, load_recipe
from hepnn.errors import HepnnError


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)  # its out_proj is a Linear torchao must skip
        self.head = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 2)))
        self.norm = nn.LayerNorm(8)


def test_linear_layers_in_module_order_without_attention_projections():
    assert linear_layers(Net()) == ["embed", "head.0", "head.2.0"]
    assert linear_layers(nn.ReLU()) == []


@pytest.mark.parametrize("scheme", SCHEMES)
def test_load_recipe_round_trip(tmp_path, scheme):
    recipe = {"scheme": scheme, "layers": ["embed", "head.0"], "activation_scales": {"embed": 0.5}}
    (tmp_path / RECIPE_FILE).write_text(json.dumps(recipe))
    assert load_recipe(tmp_path / RECIPE_FILE) == recipe


@pytest.mark.parametrize("text, message", [
    ('{"scheme": "int4_weight_only", "layers": []}', "unknown scheme 'int4_weight_only'"),
    ('{"layers": []}', "unknown scheme None"),
    ('{"scheme": "int8_dyn', "is not a readable quantization recipe"),
])
def test_load_recipe_refuses_bad_files(tmp_path, text, message):
    (tmp_path / RECIPE_FILE).write_text(text)
    with pytest.raises(HepnnError, match=f"{RECIPE_FILE}.*{message}"):
        load_recipe(tmp_path / RECIPE_FILE)


def test_load_recipe_of_a_missing_file(tmp_path):
    with pytest.raises(HepnnError, match="is not a readable quantization recipe"):
        load_recipe(tmp_path / RECIPE_FILE)
