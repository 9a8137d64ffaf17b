"""The reading thread of a streaming reader: units of files -> ``JaggedJets`` chunks, one chunk ahead."""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any, Iterator

from hepnn.data.io_flat import Unit
from hepnn.data.jagged import JaggedJets

_END = object()


def unit_chunks(unit: Unit, chunk_size: int, jets_kw: dict[str, Any], *, flat: bool,
                columns: list[str] | None, optional: tuple[str, ...] = ()) -> Iterator[JaggedJets]:
    """The first ``unit.rows`` jets of a unit in chunks: parquet row groups straight to flat arrays
    (``read_unit``), whole files of other formats (or with jet features) through awkward."""
    if flat:
        from hepnn.data.io_flat import read_unit

        chunks = read_unit(unit, chunk_size, target=jets_kw["target"], weight=jets_kw["weight"], optional=optional)
    else:
        from hepnn.data.io import iter_chunks

        chunks = (JaggedJets.from_awkward(a, **jets_kw) for a in iter_chunks([Path(unit.path)], chunk_size, columns))
    left = unit.rows
    for jets in chunks:
        if len(jets) > left:  # a unit cut short by max_jets
            jets = jets.take_first(left)
        left -= len(jets)
        if len(jets):
            yield jets
        if left <= 0:
            return


class ChunkReader:
    """Reads the next chunk in a thread while the consumer cuts batches from the last one."""

    def __init__(self, units: list[Unit], chunk_size: int, jets_kw: dict[str, Any], *, flat: bool,
                 columns: list[str] | None, optional: tuple[str, ...] = ()) -> None:
        self._args = (units, chunk_size, jets_kw, flat, columns, optional)
        self._queue: queue.Queue = queue.Queue()
        self._ahead = threading.Semaphore(1)  # read at most one chunk ahead of the consumer
        self._stop = threading.Event()
        self.produced = self.consumed = 0  # jets; each counter is written by one thread only
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Jets read but not yet handed to the consumer."""
        return self.produced - self.consumed

    def _run(self) -> None:
        units, chunk_size, jets_kw, flat, columns, optional = self._args
        try:
            chunks = (c for u in units
                      for c in unit_chunks(u, chunk_size, jets_kw, flat=flat, columns=columns, optional=optional))
            while self._acquire():  # the slot is taken before reading, so no chunk waits unseen
                jets = next(chunks, None)
                if jets is None:
                    break
                self.produced += len(jets)
                self._queue.put(jets)
            self._queue.put(_END)
        except BaseException as err:  # handed to the consumer, which re-raises it
            self._queue.put(err)

    def _acquire(self) -> bool:
        while not self._stop.is_set():
            if self._ahead.acquire(timeout=0.1):
                return True
        return False

    def __iter__(self) -> Iterator[JaggedJets]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            self.consumed += len(item)
            self._ahead.release()
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
