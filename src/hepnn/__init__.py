"""hepnn: from collision events to trained, evaluated, tuned and compressed neural networks."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hepnn")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

from hepnn.registry import create_model, list_models, register_model  # noqa: E402

__all__ = ["__version__", "create_model", "list_models", "register_model"]
