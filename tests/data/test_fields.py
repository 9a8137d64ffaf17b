"""hepnn.data.fields: every alias maps to its canonical column, canonical and unknown names pass
through, and no alias is claimed by two columns."""

from __future__ import annotations

from collections import Counter

import pytest

from hepnn.data import fields as F
from hepnn.data.fields import ALIASES, canonical_name


@pytest.mark.parametrize("canon, alias", [(c, a) for c, aliases in ALIASES.items() for a in aliases])
def test_every_alias_maps_to_its_column(canon, alias):
    assert canonical_name(alias) == canon


@pytest.mark.parametrize("name", [*F.PARTICLE_P4, *F.PARTICLE_OPTIONAL, *F.JET_P4, *F.JET_KINEMATICS, *F.TRUTH,
                                  F.LABEL])
def test_canonical_names_map_to_themselves(name):
    assert canonical_name(name) == name


def test_known_aliases_and_unknown_names():
    assert canonical_name("part_energy") == "part_E" and canonical_name("is_signal_new") == "label"
    assert canonical_name("my_column") == "my_column" and canonical_name("Part_E") == "Part_E"  # case matters


def test_aliases_are_unambiguous():
    claimed = Counter(a for aliases in ALIASES.values() for a in aliases)
    assert [a for a, n in claimed.items() if n > 1] == []
    canonical = {*F.PARTICLE_P4, *F.PARTICLE_OPTIONAL, *F.JET_P4, *F.JET_KINEMATICS, *F.TRUTH, F.LABEL}
    assert set(claimed) & canonical == set()  # an alias never shadows another canonical column
    assert set(ALIASES) <= canonical
    assert F.REQUIRED == ("part_E", "part_px", "part_py", "part_pz")
