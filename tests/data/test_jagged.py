"""hepnn.data.jagged, the parts tests/data/test_loader.py does not reach: the constructor's checks,
targets, weights and jet features from awkward, gather_index's sentinel, concat of mismatched fields,
and unshuffled batching. (Padding, take/concat of jets, bucketing and waste: test_loader.py.)"""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from hepnn.data.jagged import JaggedJets, bucket_batches, plain_batches
from hepnn.errors import DataError

P4 = np.arange(12, dtype=np.float32).reshape(3, 4) + 1  # three particles, rows 1..4, 5..8, 9..12


@pytest.mark.parametrize("offsets, fragment", [
    ([0, 2], "offsets must rise from 0 to the particle count 3"),  # stops short
    ([1, 3], "offsets must rise from 0"),  # does not start at 0
    ([0, 3, 2, 3], "offsets must rise"),  # falls
])
def test_bad_offsets_are_refused(offsets, fragment):
    with pytest.raises(DataError, match=fragment):
        JaggedJets(p4=P4, offsets=np.array(offsets))


def test_per_jet_arrays_must_have_one_row_per_jet():
    with pytest.raises(DataError, match="y has 3 rows but there are 2 jets"):
        JaggedJets(p4=P4, offsets=np.array([0, 1, 3]), y=np.zeros(3))
    with pytest.raises(DataError, match="weight has 1 rows but there are 2 jets"):
        JaggedJets(p4=P4, offsets=np.array([0, 1, 3]), weight=np.ones(1))


def test_gather_index_points_padding_at_the_zero_sentinel():
    jets = JaggedJets(p4=P4, offsets=np.array([0, 1, 1, 3]))  # counts 1, 0, 2
    idx, mask = jets.gather_index(np.array([2, 1, 0]))
    assert idx.tolist() == [[1, 2], [3, 3], [0, 3]] and mask.tolist() == [[True, True], [False, False], [True, False]]
    padded = jets.pad(np.array([1]))  # only the empty jet: one slot, all padding
    assert padded.p4.tolist() == [[[0.0, 0.0, 0.0, 0.0]]] and padded.mask.tolist() == [[False]]
    assert jets.particles_p4.shape == (3, 4) and jets.counts.tolist() == [1, 0, 2]


def awkward_jets() -> ak.Array:
    return ak.Array({
        "part_E": [[10.0, 5.0], [4.0]], "part_px": [[1.0, -1.0], [0.0]], "part_py": [[2.0, 0.0], [3.0]],
        "part_pz": [[3.0, 1.0], [0.0]], "label": [1, 0], "truth_pt": [100.0, 200.0], "truth_eta": [0.5, -0.5],
        "w": [0.25, 2.0],
    })


def test_from_awkward_targets_weights_and_jet_features():
    arrays = awkward_jets()
    one = JaggedJets.from_awkward(arrays, weight="w", jet_features=["n_particles", "pt"])
    assert one.y.tolist() == [1, 0] and one.weight.dtype == np.float32 and one.weight.tolist() == [0.25, 2.0]
    np.testing.assert_allclose(one.jet, [[2, 2.0], [1, 3.0]])  # summed px, py: (0, 2) and (0, 3)
    two = JaggedJets.from_awkward(arrays, target=["truth_pt", "truth_eta"])
    assert two.y.shape == (2, 2) and two.y.tolist() == [[100.0, 0.5], [200.0, -0.5]]
    assert JaggedJets.from_awkward(arrays, target=None).y is None
    np.testing.assert_array_equal(one.particles_p4, [[10, 1, 2, 3], [5, -1, 0, 1], [4, 0, 3, 0]])


def test_from_awkward_errors_name_the_columns():
    with pytest.raises(DataError, match=r"target column\(s\) truth_mass not in the data \(columns: part_E"):
        JaggedJets.from_awkward(awkward_jets(), target="truth_mass")
    with pytest.raises(DataError, match=r"lacks particle column\(s\) part_py"):
        JaggedJets.from_awkward(awkward_jets()[["part_E", "part_px", "part_pz"]])


def test_concat_refuses_mixing_present_and_absent_fields():
    with_y = JaggedJets(p4=P4[:1], offsets=np.array([0, 1]), y=np.array([1]))
    without = JaggedJets(p4=P4[1:], offsets=np.array([0, 2]))
    with pytest.raises(DataError, match="with and without the same per-jet/particle field"):
        JaggedJets.concat([with_y, without])
    both = JaggedJets.concat([without, JaggedJets(p4=P4[:1], offsets=np.array([0, 1]))])
    assert both.counts.tolist() == [2, 1] and both.particles_p4.tolist() == P4[[1, 2, 0]].tolist()


def test_plain_batches():
    assert [b.tolist() for b in plain_batches(5, 2)] == [[0, 1], [2, 3], [4]]
    assert [b.tolist() for b in plain_batches(5, 2, drop_last=True)] == [[0, 1], [2, 3]]
    shuffled = plain_batches(7, 3, shuffle=True, seed=1)
    assert sorted(np.concatenate(shuffled).tolist()) == list(range(7))
    assert [b.tolist() for b in shuffled] == [b.tolist() for b in plain_batches(7, 3, shuffle=True, seed=1)]
    assert np.concatenate(shuffled).tolist() != list(range(7))


def test_unshuffled_buckets_sort_each_pool_in_file_order():
    counts = np.array([5, 1, 4, 2, 6, 3])
    batches = bucket_batches(counts, 2, shuffle=False, pool=1)  # pools of 2 jets: (0, 1), (2, 3), (4, 5)
    assert [b.tolist() for b in batches] == [[1, 0], [3, 2], [5, 4]]
    batches = bucket_batches(counts, 2, shuffle=False, pool=3)  # one pool: sorted by count overall
    assert [b.tolist() for b in batches] == [[1, 3], [5, 2], [0, 4]]
