"""Monte-Carlo jet samples: Pythia 8 + FastJet, optional detector smearing, sharded resumable writing.

>>> from hepnn.generate import generate
>>> generate("top", 1000, "data/top.parquet", seed=1)   # doctest: +SKIP
>>> run_preset("toptag-100k", "samples/toptag-100k", workers=2)   # doctest: +SKIP

Pythia and FastJet (the ``gen`` extra) are imported only when generating.
"""

from hepnn.generate.presets import preset_names, run_preset
from hepnn.generate.run import generate, merge_files
from hepnn.generate.settings import GenerationSettings, make_settings

__all__ = ["GenerationSettings", "generate", "make_settings", "merge_files", "preset_names", "run_preset"]
