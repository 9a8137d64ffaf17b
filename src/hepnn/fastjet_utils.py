"""FastJet import with its one-time C++ banner kept off stdout (stdout may carry a command's output)."""

from __future__ import annotations

import os
import sys
from types import ModuleType

from hepnn.errors import missing_extra

_quiet = False


def import_fastjet() -> ModuleType:
    """``import fastjet``, with the banner (printed by the first clustering) sent to /dev/null."""
    global _quiet
    try:
        import fastjet
    except ImportError:
        raise missing_extra("gen", "fastjet") from None
    if not _quiet:
        sys.stdout.flush()
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            fastjet.ClusterSequence([fastjet.PseudoJet(1.0, 0.0, 0.0, 1.0)], fastjet.JetDefinition(fastjet.kt_algorithm, 0.4))
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
        _quiet = True
    return fastjet
