"""Sample jets from a trained generative run and write them in the native parquet layout.

``hepnn sample RUN_DIR --n N --out PATH --seed S`` calls :func:`sample_run`. The same seed gives the
same file. Every other command (inspect, predict, evaluate --data) reads the result.

What is written depends on what the model generates:

* Particle-space models (``ddpm_particles``) generate the k hardest constituents; they are written
  as massless four-vectors with the jet axis at η = φ = 0, and the jet is their sum.
* Jet-space models (``flow_jet``, ``ddpm_jet``, ``wgan_jet``, ``vae_jet``) generate jet-level features
  only (``data.jet_features``, which must include ``mass`` and ``pt``). Each jet is written with TWO
  massless pseudo-constituents whose sum is exactly the sampled jet four-vector:
  p_{1,2} = (E/2, p/2 ± (m/2) n̂) with n̂ = (p × ẑ)/|p × ẑ| (perpendicular to p, in the transverse
  plane); both are massless because |p/2 ± (m/2) n̂|² = (|p|² + m²)/4 = E²/4. The jet's η is the
  generated one when ``eta`` is a feature, else 0; φ likewise, else uniform from the seed. So jet
  mass and pT (and E, η, φ) round-trip exactly; substructure (N-subjettiness, multiplicity) of the
  written jets is that of a two-prong toy and is NOT the generated one — compare generated
  substructure with the feature values in ``hepnn evaluate``, not with features recomputed from the
  pseudo-constituents. The generated features themselves are written as ``gen_<name>`` columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hepnn.config import RunConfig
from hepnn.errors import HepnnError
from hepnn.log import get_logger
from hepnn.registry import Generator, get_model_spec, list_models
from hepnn.runs import Preprocessing, load_run

if TYPE_CHECKING:
    from torch import Tensor

log = get_logger(__name__)


def sample_model(model: Generator, n: int, *, seed: int = 0, batch_size: int = 10_000) -> Tensor:
    """``model.sample`` in chunks under a private RNG seeded with ``seed`` (the global RNG is untouched)."""
    import torch

    model.eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.no_grad():
            parts = [model.sample(min(batch_size, n - i)).float().cpu() for i in range(0, n, batch_size)]
    return torch.cat(parts)


def jets_from_kinematics(features: dict[str, np.ndarray], *, seed: int = 0) -> dict[str, np.ndarray]:
    """Jet four-vectors and two massless pseudo-constituents from mass, pT (and η, φ) (module doc).

    Returns flat arrays: ``jet_E, jet_px, jet_py, jet_pz`` (n,) and ``part_E, part_px, part_py,
    part_pz`` (n, 2), the harder constituent first.
    """
    missing = [k for k in ("mass", "pt") if k not in features]
    if missing:
        raise HepnnError(f"writing jets needs generated {' and '.join(missing)}: add them to data.jet_features")
    pt = np.clip(np.asarray(features["pt"], np.float64), 1e-3, None)
    m = np.clip(np.asarray(features["mass"], np.float64), 0.0, None)
    n = len(pt)
    eta = np.asarray(features.get("eta", np.zeros(n)), np.float64)
    phi = features.get("phi")
    phi = np.random.default_rng(seed).uniform(-np.pi, np.pi, n) if phi is None else np.asarray(phi, np.float64)
    p = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=1)  # (n, 3)
    e = np.sqrt((p**2).sum(1) + m**2)
    nhat = np.stack([p[:, 1], -p[:, 0], np.zeros(n)], axis=1) / pt[:, None]  # unit, p x z-hat
    k = 0.5 * m[:, None] * nhat
    parts = np.stack([0.5 * p + k, 0.5 * p - k], axis=1)  # (n, 2, 3)
    order = np.argsort(-np.hypot(parts[..., 0], parts[..., 1]), axis=1, kind="stable")
    parts = np.take_along_axis(parts, order[..., None], axis=1)
    out = {"jet_E": e, "jet_px": p[:, 0], "jet_py": p[:, 1], "jet_pz": p[:, 2],
           "part_E": np.repeat(0.5 * e[:, None], 2, axis=1)}
    out.update(part_px=parts[..., 0], part_py=parts[..., 1], part_pz=parts[..., 2])
    return out


def to_native(part: dict[str, np.ndarray], mask: np.ndarray, label: int,
              extra: dict[str, np.ndarray] | None = None) -> Any:
    """Padded constituents (n, K) + mask -> an awkward array in the native layout (jet = sum)."""
    import awkward as ak

    counts = mask.sum(1)
    cols: dict[str, Any] = {c: ak.unflatten(np.asarray(part[c], np.float32)[mask], counts)
                            for c in ("part_E", "part_px", "part_py", "part_pz")}
    cols["part_charge"] = ak.unflatten(np.zeros(int(counts.sum()), np.int8), counts)
    cols["part_pid"] = ak.unflatten(np.zeros(int(counts.sum()), np.int32), counts)
    e, px, py, pz = (np.where(mask, part[c], 0).astype(np.float64).sum(1) for c in
                     ("part_E", "part_px", "part_py", "part_pz"))
    pt = np.hypot(px, py)
    m2 = e**2 - px**2 - py**2 - pz**2
    jet = {"jet_E": e, "jet_px": px, "jet_py": py, "jet_pz": pz, "jet_pt": pt,
           "jet_eta": np.arcsinh(pz / np.where(pt > 0, pt, 1.0)), "jet_phi": np.arctan2(py, px),
           "jet_mass": np.sign(m2) * np.sqrt(np.abs(m2))}
    cols.update({k: v.astype(np.float32) for k, v in jet.items()})
    cols["label"] = np.full(len(counts), label, dtype=np.int64)
    cols.update({k: np.asarray(v, np.float32) for k, v in (extra or {}).items()})
    return ak.zip(cols, depth_limit=1)


def generate_jets(cfg: RunConfig, model: Generator, pre: Preprocessing, n: int, *, seed: int = 0,
                  label: int = 0) -> tuple[Any, dict[str, np.ndarray]]:
    """``n`` generated jets: (awkward array in the native layout, generated jet features by name).

    Jet-space models return their features in physical units (the run's jet preprocessing inverted);
    particle-space models return the mass, pT and multiplicity of the generated constituents.
    """
    spec = get_model_spec(cfg.model.name)
    if spec.kind != "generative":
        generative = ", ".join(m for m in list_models() if get_model_spec(m).kind == "generative")
        raise HepnnError(f"model {cfg.model.name!r} does not generate jets; sample from a run of {generative}")
    s = sample_model(model, n, seed=seed)
    if model.space == "jet":
        feats = s.numpy().astype(np.float64)
        if "jet" in pre:
            feats = pre["jet"].inverse_transform(feats)
        named = {name: feats[:, j] for j, name in enumerate(cfg.data.jet_features)}
        kin = jets_from_kinematics(named, seed=seed)
        arrays = to_native(kin, np.ones((n, 2), bool), label, extra={f"gen_{k}": v for k, v in named.items()})
        return arrays, named
    from hepnn.evaluate.generative import physics_features

    p4, mask = model.to_p4(s)
    p4, mask = p4.numpy(), mask.numpy()
    part = {c: p4[..., j] for j, c in enumerate(("part_E", "part_px", "part_py", "part_pz"))}
    arrays = to_native(part, mask, label)
    return arrays, physics_features(arrays)[0]


def default_label(cfg: RunConfig) -> int:
    """Label written on generated jets: the one class the generator was trained on, else 0."""
    labels = cfg.data.train_labels
    return int(labels[0]) if labels and len(labels) == 1 else 0


def sample_run(run_dir: str | Path, n: int, out: str | Path, *, seed: int = 0) -> Path:
    """Sample ``n`` jets from the generative run in ``run_dir`` into the parquet file ``out``."""
    from hepnn import __version__
    from hepnn.data.io import write_parquet

    if n <= 0:
        raise HepnnError(f"--n must be positive, got {n}")
    cfg, model, pre, kind = load_run(run_dir)
    arrays, _ = generate_jets(cfg, model, pre, n, seed=seed, label=default_label(cfg))
    meta = {"generated_by": str(run_dir), "model": cfg.model.name, "task": kind, "seed": seed, "n_jets": n,
            "hepnn": __version__, "constituents": "generated" if model.space == "particles" else
            "two massless pseudo-constituents summing to the generated jet (see hepnn.sample)"}
    write_parquet(arrays, out, metadata=meta)
    log.info("%d generated jets written to %s", n, out)
    return Path(out)
