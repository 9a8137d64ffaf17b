"""The demo's sentences: each model against the jet mass alone and the BDT, then what it sees."""

from __future__ import annotations

from hepnn.demo import WHY, explain


def test_explain_places_the_model_against_both_baselines():
    text = explain("pfn", 0.95, 0.92, 0.98, 3000)
    assert text.startswith("pfn: AUC 0.950 after 3000 training jets, above the jet mass alone (0.920) and "
                           "below the BDT (0.980); ")
    assert WHY["pfn"] in text
    assert "below the jet mass alone" in explain("gcn", 0.90, 0.92, None, None)
    assert "the BDT" not in explain("bdt", 0.98, 0.92, 0.98, 3000)  # not against itself


def test_every_default_demo_model_has_its_sentence():
    from hepnn.cli import demo
    import inspect

    default = inspect.signature(demo).parameters["models"].default
    assert set(default.split(",")) <= set(WHY)


def test_the_jet_level_sentences_count_the_observables_the_configs_read():
    from hepnn.config import load_config
    from tests.conftest import ROOT

    words = {5: "five", 9: "nine"}
    for name in ("bdt", "mlp", "logistic"):
        n = len(load_config(ROOT / "configs" / "top_tagging" / f"{name}.yaml").data.jet_features)
        assert f"{words.get(n, n)} " in WHY[name] and "observables" in WHY[name], (name, n, WHY[name])
