"""Validated options of one generation run (``hepnn generate``), checked before any work is done."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hepnn.errors import ConfigError
from hepnn.generate.pythia import PROCESSES

MAX_SEED = 899_999  # shard seeds are seed * 1000 + shard; Pythia accepts Random:seed < 900 000 000
MAX_SHARDS = 1000
MAX_PT = 7000.0  # GeV, half of √s = 14 TeV
SUFFIX = {"parquet": ".parquet", "toptagging-h5": ".h5"}


class GenerationSettings(BaseModel):
    """Everything that defines a generated sample (and, minus bookkeeping, each shard's content)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    process: str  # one of PROCESSES: "top", "qcd", "w"
    n_jets: int = Field(gt=0)  # jets in total, over all shards
    seed: int = Field(1, ge=0, le=MAX_SEED)  # shard i runs Pythia with Random:seed = seed * 1000 + i
    workers: int = Field(1, ge=1)  # processes; shards are spread over them
    pt_min: float = Field(550.0, ge=0)  # jet pT window, GeV (exclusive)
    pt_max: float = 650.0
    eta_max: float = Field(2.0, gt=0)  # |η| < eta_max
    R: float = Field(0.8, gt=0, le=2.0)  # anti-kT radius and truth-matching radius
    mpi: bool = False  # multiparton interactions (off in the reference sample, arXiv:1902.09914)
    pileup: float = Field(0.0, ge=0, le=200)  # mean number μ of minimum-bias events overlaid (Poisson)
    detector: Literal["none", "simple"] = "simple"  # simple = Delphes ATLAS energy flow, as the reference
    jets: Literal["leading", "all"] = "leading"  # leading = only each event's hardest jet (reference)
    max_constituents: int | None = Field(200, gt=0)  # leading constituents kept (the reference stores 200)
    mode: Literal["unbiased", "window"] = "unbiased"
    fmt: Literal["parquet", "toptagging-h5"] = "parquet"
    shard_size: int = Field(10_000, gt=0)  # jets per shard file (the last may hold fewer)
    batch_events: int = Field(100, gt=0)  # events per nextBatch call (speed only; part of the content)
    progress: bool = True

    @model_validator(mode="after")
    def _check(self) -> "GenerationSettings":
        if self.process not in PROCESSES:
            raise ValueError(f"unknown process {self.process!r}; choose one of {', '.join(PROCESSES)}")
        if self.pt_min >= self.pt_max:
            raise ValueError(f"pt_min ({self.pt_min:g}) must be below pt_max ({self.pt_max:g})")
        if self.pt_max > MAX_PT:
            raise ValueError(f"pt_max ({self.pt_max:g}) exceeds the beam energy ({MAX_PT:g} GeV)")
        if self.n_shards > MAX_SHARDS:
            raise ValueError(f"{self.n_shards} shards exceed {MAX_SHARDS}; raise shard_size")
        return self

    @property
    def n_shards(self) -> int:
        return math.ceil(self.n_jets / self.shard_size)

    def shard_jets(self, i: int) -> int:
        """Jets in shard ``i``: ``shard_size`` except the last."""
        return min(self.shard_size, self.n_jets - i * self.shard_size)

    def shard_seed(self, i: int) -> int:
        return self.seed * 1000 + i

    def content_key(self) -> dict:
        """The settings that decide a shard's content (not n_jets, workers or progress)."""
        return self.model_dump(exclude={"n_jets", "workers", "progress"})

    def shard_paths(self, out: Path) -> list[Path]:
        """Output files. ``out`` with the format's suffix is one file (one shard only); anything
        else is a directory holding ``shard-00000<suffix>``, ``shard-00001<suffix>``, ..."""
        suffix = SUFFIX[self.fmt]
        if out.suffix == suffix:
            if self.n_shards > 1:
                raise ConfigError(
                    f"{out} is a single file but {self.n_jets} jets need {self.n_shards} shards of "
                    f"{self.shard_size}; give a directory or raise shard_size"
                )
            return [out]
        if out.suffix in SUFFIX.values():
            raise ConfigError(f"{out}: suffix {out.suffix} does not match fmt={self.fmt!r} ({suffix})")
        return [out / f"shard-{i:05d}{suffix}" for i in range(self.n_shards)]


def make_settings(**kwargs) -> GenerationSettings:
    """``GenerationSettings(**kwargs)`` with pydantic's errors turned into one-line ``ConfigError``."""
    try:
        return GenerationSettings(**kwargs)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "generate"
        msg = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"generate: {where}: {msg}") from None
