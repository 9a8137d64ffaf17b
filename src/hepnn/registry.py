"""The one registry of models: ``@register_model`` on small factories, ``create_model`` to build.

A factory is a function returning a model. Its spec says what the model is (``kind``), which
``Batch`` fields it reads (the loader builds only those) and what it promises (``tags``), so callers
ask the spec and never compare family names; the contract tests derive their checks from it:

* ``kind="torch"``: an ``nn.Module``; ``forward(batch)`` gives (B, num_classes) logits when the factory
  takes ``num_classes``, else the output its task reads (an autoencoder's reconstruction).
* ``kind="generative"``: an ``nn.Module`` that also samples jets (:class:`Generator`).
* ``kind="tree"``: fitted on whole arrays, not by the engine (:class:`TreeModel`).

Tags: ``permutation`` (output invariant under reordering particles), ``lorentz`` (invariant under
Lorentz transformations of all four-vectors), ``irc_safe`` (infrared and collinear safe).

Variants (``part_lite``) are data on one factory: ``register_variant("part_lite", of="part", ...)``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Protocol, runtime_checkable

import numpy as np

from hepnn.errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor

    from hepnn.data.batch import Batch

ModelKind = Literal["torch", "tree", "generative"]
KINDS = ("torch", "tree", "generative")
TAGS = frozenset({"permutation", "lorentz", "irc_safe"})


@runtime_checkable
class TreeModel(Protocol):
    """A model fitted on whole arrays (the BDT): jet features (n, F) in, scores (n, K) or (n,) out."""

    def fit_arrays(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None,
                   x_val: np.ndarray, y_val: np.ndarray) -> Any: ...
    def predict_arrays(self, x: np.ndarray) -> np.ndarray: ...
    def save(self, path: Path) -> None: ...
    def load(self, path: Path) -> Any: ...
    def n_params(self) -> int: ...


@runtime_checkable
class Generator(Protocol):
    """What sampling code calls on a generative model.

    ``space == "jet"``: ``sample(n)`` is (n, F) jet features in the preprocessed space of the run.
    ``space == "particles"``: ``sample(n)`` is (n, k, 4) slots that ``to_p4`` turns into
    four-vectors (n, k, 4) and a mask (n, k).
    """

    space: str

    def sample(self, n: int) -> Tensor: ...


@runtime_checkable
class ParticleGenerator(Generator, Protocol):
    k: int

    def to_p4(self, slots: Tensor) -> tuple[Tensor, Tensor]: ...


@runtime_checkable
class LatentModel(Protocol):
    """A model with a latent space (autoencoders): ``encode(batch)`` is (B, latent_dim)."""

    latent_dim: int

    def encode(self, batch: Batch) -> Tensor: ...


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about a model name."""

    name: str
    factory: Callable[..., Any]
    inputs: tuple[str, ...]  # Batch fields the model reads, e.g. ("x", "mask") or ("jet",)
    family: str = ""  # e.g. "deepsets", "gnn", "transformer", "lorentz" (a label for tables)
    tags: frozenset[str] = field(default_factory=frozenset)  # promises: "permutation", "lorentz", "irc_safe"
    doc: str = ""
    kind: ModelKind = "torch"
    defaults: Mapping[str, Any] = field(default_factory=dict)  # a variant's settings of the factory
    variant_of: str | None = None

    @property
    def is_torch(self) -> bool:
        """Trained by the engine (``nn.Module``): every kind but trees."""
        return self.kind != "tree"

    def params(self) -> dict[str, Any]:
        """Keyword parameters of the factory and their defaults (a variant's own where it sets them)."""
        sig = inspect.signature(self.factory)
        out = {k: (None if p.default is inspect.Parameter.empty else p.default) for k, p in sig.parameters.items()}
        return {**out, **self.defaults}


_MODELS: dict[str, ModelSpec] = {}


def _add(spec: ModelSpec) -> None:
    if spec.name in _MODELS:
        raise ValueError(f"model {spec.name!r} is already registered by {_MODELS[spec.name].factory}")
    if spec.kind not in KINDS:
        raise ValueError(f"model {spec.name!r}: kind {spec.kind!r} is not one of {KINDS}")
    unknown = spec.tags - TAGS
    if unknown:
        raise ValueError(f"model {spec.name!r}: unknown tags {sorted(unknown)}; known: {sorted(TAGS)}")
    _MODELS[spec.name] = spec


def register_model(
    name: str,
    *,
    inputs: tuple[str, ...],
    family: str = "",
    tags: tuple[str, ...] = (),
    kind: ModelKind = "torch",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a model factory under ``name``. Registering a name twice is an error."""

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        doc = (inspect.getdoc(factory) or "").split("\n", 1)[0]
        _add(ModelSpec(name, factory, tuple(inputs), family, frozenset(tags), doc, kind))
        return factory

    return deco


def register_variant(name: str, *, of: str, doc: str, **defaults: Any) -> None:
    """Register ``name`` as the factory of ``of`` with other default parameters (e.g. a lite size)."""
    base = _MODELS[of]
    unknown = sorted(set(defaults) - set(base.params()))
    if unknown:
        raise ValueError(f"variant {name!r} of {of!r} sets unknown parameters {unknown}")
    _add(ModelSpec(name, base.factory, base.inputs, base.family, base.tags, doc, base.kind,
                   {**base.defaults, **defaults}, of))


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
    return spec.factory(**{**spec.defaults, **kwargs})


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _load_builtin_models()
    return sorted(_MODELS)


def count_parameters(model: Any) -> int:
    """Trainable parameters of a torch module; tree nodes for a tree model (0 before fitting)."""
    if isinstance(model, TreeModel):
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
            n_params: int | None = count_parameters(create_model(name))
        except HepnnError:  # an optional dependency (e.g. zuko for flows) is not installed
            n_params = None
        rows.append(dict(name=name, family=spec.family, inputs=spec.inputs, n_params=n_params, doc=spec.doc))
    return rows
