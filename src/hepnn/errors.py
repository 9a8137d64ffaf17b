"""The project's own error type: one clear line for the user, no traceback unless ``--debug``."""


class HepnnError(Exception):
    """A user-facing error. The message names the file, key or column at fault and what to do."""


class ConfigError(HepnnError):
    """A run configuration is invalid (unknown key, wrong type, impossible value)."""


class DataError(HepnnError):
    """A data file is missing, empty, corrupt, or has missing/non-finite columns."""


def missing_extra(extra: str, package: str) -> HepnnError:
    """Error for an optional dependency that is not installed."""
    return HepnnError(
        f"{package} is not installed; it is part of the optional extra '{extra}': "
        f"pip install 'hepnn[{extra}]'"
    )
