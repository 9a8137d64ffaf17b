"""The public jet datasets: a catalogue with official URLs and checksums, verified resumable downloads,
and a streamed conversion to hepnn's parquet where a layout needs one.

    hepnn datasets list
    hepnn datasets get toptagging --dir datasets/toptagging      # then: hepnn train configs/published/...
    hepnn datasets verify toptagging --dir datasets/toptagging
    hepnn datasets convert quarkgluon --dir datasets/quarkgluon  # .npz -> parquet shards

One concept per module: ``catalogue`` (types, lookups), ``sources`` (the four datasets and where each
URL and checksum was published), ``download`` (one file: .part + HTTP Range, checksum, rename),
``archive`` (safe tar unpacking), ``manifest`` (what a folder holds), ``get`` (a dataset's files),
``convert`` with ``convert_qg`` / ``convert_jetnet`` (layouts -> parquet, via ``parquet_out``).
"""

from hepnn.datasets.catalogue import Dataset, RemoteFile
from hepnn.datasets.sources import catalogue, get_dataset

__all__ = ["Dataset", "RemoteFile", "catalogue", "get_dataset"]
