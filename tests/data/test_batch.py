"""hepnn.data.batch: a Batch's length, row selection across every present field, and moving it
(absent fields stay None)."""

from __future__ import annotations

import torch

from hepnn.data.batch import Batch


def full_batch() -> Batch:
    b, n = 4, 3
    return Batch(x=torch.arange(b * n * 2.0).view(b, n, 2), mask=torch.ones(b, n, dtype=torch.bool),
                 jet=torch.arange(b * 5.0).view(b, 5), y=torch.tensor([0, 1, 1, 0]), weight=torch.tensor([1.0, 2, 3, 4]))


def test_len_is_the_first_present_fields_rows():
    assert len(full_batch()) == 4
    assert len(Batch(image=torch.zeros(6, 1, 8, 8))) == 6
    assert len(Batch()) == 0


def test_rows_are_selected_from_every_present_field():
    batch = full_batch()
    for index in (torch.tensor([2, 0]), torch.tensor([False, True, False, True]), slice(1, 3)):
        part = batch[index]
        for name in ("x", "mask", "jet", "y", "weight"):
            assert torch.equal(getattr(part, name), getattr(batch, name)[index]), name
        assert part.p4 is None and part.image is None
    assert batch[torch.tensor([3])].y.tolist() == [0] and batch[torch.tensor([3])].x.shape == (1, 3, 2)


def test_to_moves_present_fields_and_keeps_absent_ones():
    batch = full_batch()
    moved = batch.to("cpu")
    assert moved is not batch and moved.p4 is None and moved.image is None
    assert all(torch.equal(getattr(moved, k), getattr(batch, k)) for k in ("x", "mask", "jet", "y", "weight"))
    assert moved.mask.dtype == torch.bool and moved.y.dtype == torch.int64
