"""The meaning of every run-config key, one sentence each: the source of the config reference.

The documentation's config reference (``docs/reference/config.rst``) is generated at build time
from the fields of :class:`~qhn.experiments.config.RunConfig` and :class:`~qhn.train.TrainConfig`
(key, type, default) and from :data:`FIELD_DOCS` (meaning); :func:`config_keys` walks both, and a
field without an entry here fails the docs build and ``tests/test_config_docs.py``, so the
reference cannot drift from the code. Keys are written as in ``--set``: ``train.steps``.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any

__all__ = ["FIELD_DOCS", "ConfigKey", "config_keys"]

FIELD_DOCS: dict[str, str] = {
    # task
    "task": "The task to train on (`qhn tasks` lists them).",
    "task_options": "Options of that task, a table (`task_options.n_train = 200`); "
    "`qhn tasks` lists each task's options with their defaults. A relative `path` is "
    "stored absolute.",
    "data_seed": "Seed of the task's data and splits, apart from `train.seed` so that the "
    "seeds of a sweep share one data set.",
    # objective
    "objective": "`mle` (maximize E_q[ℓ]), `elbo` (E_q[ℓ] − β·KL(q‖p), exact "
    "distributions only) or `selbo` (E_q[ℓ] − λ·MMD²(q, p), from probabilities or shots).",
    "method": "`qhn` (unset: this hypernetwork) or a classical baseline of `qhn baseline` "
    "(`bayesbinn`, `ste`, `anneal`, `random`, `exhaustive`, `float`) on the same task, seed "
    "and steps.",
    "baseline": "Options of that baseline, a table (`qhn config keys --baseline` lists them).",
    "beta": "Weight β of the KL term of the ELBO (≥ 0).",
    "lam": "Weight λ of the MMD² term of the SELBO (≥ 0).",
    "prior_p": "P(bit = 1) of the factorized Bernoulli prior p, in (0, 1); 0.5 is uniform.",
    "kernel_bandwidths": "Bandwidths σ_j of the Hamming kernel of the MMD, "
    "k(s, t) = (1/m) Σ_j exp(−h(s, t)/(2σ_j)), h the Hamming distance.",
    "analytic_prior": "Compute the prior's kernel expectations in closed form (true) or "
    "from samples of the prior (false).",
    "temperature": "Likelihood temperature T in ℓ(s) = −N·C(s)/T (> 0); T = N/N_eff "
    "gives the evidence of N_eff examples.",
    # circuit
    "ansatz": "Circuit family: `hardware_efficient`, `product` (no entanglement) or "
    "`qhn_reference` (the reference QHN circuit).",
    "layers": "Entangling layers of the ansatz (0: rotations only).",
    "rotations": "Rotation gates of each layer, from `ry`, `rx`, `rz`.",
    "entangler": "Two-qubit gate of each layer: `cz` or `cnot`.",
    "topology": "Which qubit pairs are entangled: `chain`, `ring` or `brick`.",
    "init": "Initial angles: `uniform` in [0, 2π), `small` (within ±`init_scale` of the "
    "uniform product state) or `warm` (the product state trained for `warm_steps` steps, "
    "then embedded exactly).",
    "init_scale": "Spread of the `small` initialization (> 0).",
    "warm_steps": 'Steps of the product-state training behind `init = "warm"` (unset: '
    "the run's `train.steps`).",
    "restarts": "Train this many initializations and keep the lowest final training loss "
    "(unset: 1); every start counts in `evaluations`.",
    # backend and gradients
    "backend": "Backend spec: `statevector`, `sampled` (samples only, as on hardware), "
    "`noisy`, `mps` (matrix-product state, for many qubits; with `shots` it trains one "
    "circuit over all bits from sampled networks), `qiskit:<target>`, `pennylane:<device>`.",
    "estimator": "Gradient estimator: `auto` (backprop for exact expectations on the "
    "statevector, parameter-shift otherwise; local-expectation for blocks or `mps` with "
    "shots), `backprop`, `parameter-shift`, `score-function`, `local-expectation`.",
    "shots": "Shots per circuit execution; unset means exact expectations.",
    "precision": "Real precision of the statevector simulator: `float64` (default) or "
    "`float32` (faster, about 1e-7 relative error); statevector and sampled backends only.",
    "readout_correction": "SELBO only: correct the MMD² kernel for the backend's known "
    "readout flips (from `[noise]` or a fake device's snapshot), so it estimates the MMD² of "
    "the distribution before readout.",
    "max_step_seconds": "A sampled run on the statevector whose predicted step (2P+2 "
    "circuits with parameter shift) takes longer than this many seconds is refused before "
    "it starts (default 300); raise it to run anyway.",
    "noise": "The `[noise]` table of a noisy backend: `p1`, `p2`, `readout`, `readout01`, "
    "`readout10`, `scale`.",
    # scale
    "blocks": "Block-factorized hypernetwork: `k` equal blocks or a list of block sizes; "
    "independent circuits on consecutive bits, trained from sampled networks (unset: one "
    "circuit, exact enumeration or shots).",
    "batch_size": "Training examples per step of a block-factorized or sampled `mps` run "
    "(unset: all); the "
    "data term is scaled by N/T so it stays unbiased.",
    # train
    "train.steps": "Optimization steps (≥ 1).",
    "train.lr": "Learning rate (> 0); with L-BFGS the initial step length (use 1).",
    "train.optimizer": "`adam`, or `lbfgs` (one step = one strong-Wolfe L-BFGS step of up "
    "to `lbfgs_max_iter` iterations).",
    "train.lbfgs_max_iter": "Iterations per L-BFGS step.",
    "train.schedule": "Learning-rate schedule over steps: `constant`, `cosine` or `step` "
    "(halved every third of the run).",
    "train.anneal_steps": "Warm the prior term's weight up linearly over this many steps "
    "(0: full weight from the start).",
    "train.seed": "Seed of the initialization and of every shot; evaluation uses seed + 1.",
    "train.grad_clip": "Clip the gradient's L2 norm to this value (Adam only); unset: no clipping.",
    "train.early_stop_patience": "Stop after this many steps without the loss improving "
    "by more than `early_stop_min_delta` (0: never).",
    "train.early_stop_min_delta": "The improvement early stopping counts (≥ 0).",
    "train.checkpoint_every": "Also save a checkpoint every this many steps (0: only "
    "every ~10 s, at the end and on a signal).",
}


@dataclass(frozen=True)
class ConfigKey:
    """One key of a run config: as written in ``--set``, its group, type, default and meaning.

    ``default`` is the field's default value (``MISSING`` for a required key).
    """

    key: str
    group: str
    type: str
    default: Any
    doc: str


def config_keys() -> list[ConfigKey]:
    """Every run-config key in field order, ``train.*`` in place of ``train``.

    Raises ``KeyError`` naming a field that has no entry in :data:`FIELD_DOCS`.
    """
    from qhn.experiments.config import RunConfig
    from qhn.train import TrainConfig

    def default(f: Any) -> Any:
        if f.default is not MISSING:
            return f.default
        if f.default_factory is not MISSING:
            return f.default_factory()
        return MISSING

    def doc(key: str) -> str:
        if key not in FIELD_DOCS:
            raise KeyError(f"config key {key!r} has no entry in qhn.experiments.config_docs")
        return FIELD_DOCS[key]

    keys = []
    for f in fields(RunConfig):
        group = f.metadata.get("group", "other")
        if f.name == "train":
            for t in fields(TrainConfig):
                name = f"train.{t.name}"
                keys.append(ConfigKey(name, group, str(t.type), default(t), doc(name)))
        else:
            keys.append(ConfigKey(f.name, group, str(f.type), default(f), doc(f.name)))
    return keys
