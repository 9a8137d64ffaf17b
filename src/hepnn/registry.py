"""The one registry of models: ``@register_model`` on small factories, ``create_model`` to build.

A factory is a function returning an ``nn.Module`` (or an estimator for non-gradient models such as
the BDT). Its metadata says which ``Batch`` fields the model reads, so the loader builds only those.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from hepnn.errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about a model name."""

    name: str
    factory: Callable[..., Any]
    inputs: tuple[str, ...]  # Batch fields the model reads, e.g. ("x", "mask") or ("jet",)
    family: str = ""  # e.g. "deepsets", "gnn", "transformer", "lorentz"
    tags: frozenset[str] = field(default_factory=frozenset)  # e.g. {"permutation", "lorentz"}
    doc: str = ""

    def params(self) -> dict[str, Any]:
        """Keyword parameters of the factory and their defaults."""
        sig = inspect.signature(self.factory)
        return {
            k: (None if p.default is inspect.Parameter.empty else p.default)
            for k, p in sig.parameters.items()
        }


_MODELS: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    inputs: tuple[str, ...],
    family: str = "",
    tags: tuple[str, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a model factory under ``name``. Registering a name twice is an error."""

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered by {_MODELS[name].factory}")
        doc = (inspect.getdoc(factory) or "").split("\n", 1)[0]
        _MODELS[name] = ModelSpec(name, factory, tuple(inputs), family, frozenset(tags), doc)
        return factory

    return deco


def _load_builtin_models() -> None:
    import hepnn.models  # noqa: F401  (registers the zoo on import)


def get_model_spec(name: str) -> ModelSpec:
    """Look a model up by name; an unknown name is an error listing the known ones."""
    _load_builtin_models()
    if name not in _MODELS:
        raise ConfigError(f"model.name: unknown model {name!r}; known models: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def create_model(name: str, **kwargs: Any) -> Any:
    """Build the model registered as ``name`` with keyword arguments (unknown ones are an error)."""
    spec = get_model_spec(name)
    allowed = spec.params()
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ConfigError(
            f"model.params: unknown parameter(s) {', '.join(unknown)} for model {name!r}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    return spec.factory(**kwargs)


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _load_builtin_models()
    return sorted(_MODELS)


def count_parameters(model: Any) -> int:
    """Trainable parameters of a torch module; tree nodes for a BDT."""
    if hasattr(model, "n_params"):
        try:
            return int(model.n_params())
        except Exception:  # an unfitted BDT has no trees yet
            return 0
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def describe_models() -> list[dict[str, Any]]:
    """One row per registered model: name, family, inputs, parameter count at defaults, doc line."""
    from hepnn.errors import HepnnError

    rows = []
    for name in list_models():
        spec = _MODELS[name]
        try:
            n_params: int | None = count_parameters(spec.factory())
        except HepnnError:  # an optional dependency (e.g. zuko for flows) is not installed
            n_params = None
        rows.append(dict(name=name, family=spec.family, inputs=spec.inputs, n_params=n_params, doc=spec.doc))
    return rows
