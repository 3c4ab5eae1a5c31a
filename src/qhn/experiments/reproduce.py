"""The method paper's comparison as one sweep: MLE vs ELBO vs SELBO (Nepote et al., METHOD.md §7).

:func:`reproduce_sweep` writes the ``sweep.toml`` that ``qhn reproduce`` runs; the sweep and
report machinery does the rest, so a reproduction is an ordinary sweep directory that
``qhn report`` can rebuild.

Design (all numbers are in the generated file, which is copied into the sweep directory):

- **Tasks**: ``qhn-gaussian`` (18 bits), ``digits01`` (17), ``digits37+alphabet`` (19), ``moons``
  (13), ``teacher`` (10) and ``cost-vector`` on the reference MNIST landscape (17 bits; skipped
  when the file is absent).
- **Objectives**: MLE; ELBO with the exact KL to the uniform prior (``β = 1``); SELBO with the
  MMD² to the uniform prior from exact probabilities (``λ``), and sample-only SELBO from shots
  with shot-based parameter-shift gradients (and sample-only MLE as its baseline) on the tasks
  small enough for that to be cheap.
- **Circuits**: ``hardware_efficient`` RY + CZ chain with ``layers`` 0 (the product state, the
  mean-field baseline), 1, 2, 3.
- **Scale of the data term**: the prior's weight depends on ``N``: ``KL ≤ n ln 2`` and
  ``MMD² ≤ 2`` while ``ℓ = −N·C/T`` grows with the data. Each task gets a temperature
  ``T = N / N_eff`` so that every task's likelihood carries ``N_eff`` (default 100) examples'
  worth of evidence — a tempered posterior, stated in the report. MLE is unaffected (Adam is
  invariant to the scale of the loss).
- **Classical baselines** (second edition), on each task's exact settings and seeds:
  ``bayesbinn`` and ``ste`` with the QHN's steps; ``anneal`` and ``random`` with a budget of
  ``2^n`` network-loss evaluations — what an exact QHN run really computes (it enumerates the
  landscape once and reuses it every step; its summary's ``evaluations`` counts ``2^n`` per step,
  a budget no search of real network losses could spend at 18 bits); ``exhaustive`` (the
  landscape's optimum) as a reference. Comparisons pair each QHN arm with each baseline by seed
  (:mod:`qhn.experiments.baseline_comparisons`). ``cost-vector`` has no network, so only the
  searches run on it.
- **At scale** (full edition): ``digits10`` (1,210 bits, no enumeration) with the recipe of
  ``examples/digits10.toml`` (:data:`DIGITS10_RECIPE`: 121 ten-qubit blocks, 4 sampled
  networks × 128-example minibatches, local-expectation gradients, ELBO at ``β = 0.3``, its own
  untempered likelihood), the product state (layers 0) against 1 entangling layer, MLE at
  layers 1, and ``bayesbinn`` / ``ste`` at the same steps, 3 seeds. Its exact metrics
  (``E_q[C]``, mass on the optimum) do not exist; the comparisons are on test accuracy.
- **Seeds**: ``train.seed`` varies the initialisation and the shots; the data set of a task is
  the same for every run (``data_seed = 0``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from qhn.data import get_task
from qhn.experiments.toml_format import toml_value

__all__ = ["DEFAULT_COST_VECTOR", "DIGITS10_RECIPE", "ReproduceScale", "reproduce_sweep"]

#: Where the reference MNIST landscape lives relative to the working directory (repo root).
DEFAULT_COST_VECTOR = Path("../shared/data/binncode-mnist01/Cop_4x4.txt")
#: N of the reference landscape: MNIST 0-vs-1 training images (METHOD.md §6).
MNIST01_TRAIN_SIZE = 12665


@dataclass(frozen=True)
class ReproduceScale:
    """How big a reproduction is."""

    tasks: tuple[str, ...]
    sampled_tasks: tuple[str, ...]
    layers: tuple[int, ...]
    seeds: int
    steps: int
    sampled_steps: int
    shots: int
    baselines: tuple[str, ...]
    baseline_tasks: tuple[str, ...] | None = None
    scale_tasks: tuple[str, ...] = ()


#: Baselines that need only ``C(s)`` (no network, no data): they also run on ``cost-vector``.
SEARCH_BASELINES = ("anneal", "random", "exhaustive")
#: Baselines whose budget is matched to one enumeration, ``2^n`` evaluations.
BUDGETED_BASELINES = ("anneal", "random")

#: The run keys of ``examples/digits10.toml`` (the scale issue's recipe), as sweep overrides.
DIGITS10_RECIPE: dict[str, object] = {
    "objective": "elbo",
    "beta": 0.3,
    "ansatz": "hardware_efficient",
    "blocks": 121,
    "shots": 4,
    "batch_size": 128,
    "estimator": "local-expectation",
    "train.steps": 600,
    "train.lr": 0.05,
}
#: Seeds of the at-scale rows (a run takes minutes, not seconds).
SCALE_SEEDS = 3
#: Gradient baselines of the at-scale rows (the searches cannot match 2^1210).
SCALE_BASELINES = ("ste", "bayesbinn")


FULL = ReproduceScale(
    tasks=("qhn-gaussian", "digits01", "digits37+alphabet", "moons", "teacher", "cost-vector"),
    sampled_tasks=("moons", "teacher"),
    layers=(0, 1, 2, 3),
    seeds=10,
    steps=300,
    sampled_steps=200,
    shots=256,
    baselines=("bayesbinn", "ste", "anneal", "random", "exhaustive"),
    scale_tasks=("digits10",),
)
QUICK = ReproduceScale(
    tasks=("teacher", "moons"),
    sampled_tasks=("teacher",),
    layers=(0, 1, 2),
    seeds=3,
    steps=120,
    sampled_steps=80,
    shots=128,
    baselines=("bayesbinn", "anneal"),
    baseline_tasks=("teacher",),
)


def reproduce_sweep(
    *,
    quick: bool = False,
    n_eff: float = 100.0,
    lam: float = 10.0,
    lr: float = 0.05,
    seeds: int | None = None,
    cost_vector: Path | None = DEFAULT_COST_VECTOR,
) -> str:
    """The text of the reproduction's ``sweep.toml``.

    ``n_eff``: the evidence, in examples, every task's likelihood carries (``T = N / n_eff``).
    ``lam``: SELBO's λ (its MMD² lies in [0, 2], so λ ≈ 10 weighs the prior about as strongly as
    the KL of an n ≈ 15-bit ELBO). ``seeds``: replicates per point (default: the scale's; the
    at-scale rows keep at most :data:`SCALE_SEEDS`). The cost-vector task is left out when
    ``cost_vector`` is None or does not exist.
    """
    scale = QUICK if quick else FULL
    if seeds is not None:
        scale = replace(scale, seeds=seeds)
    lines = [
        f"# qhn reproduce{' --quick' if quick else ''}: MLE vs ELBO vs SELBO "
        f"(N_eff = {n_eff:g}, beta = 1, lambda = {lam:g})",
        f"seeds = {scale.seeds}",
        "",
        "[base]",
        'ansatz = "hardware_efficient"',
        "beta = 1.0",
        f"lam = {toml_value(float(lam))}",
        "",
        "[base.train]",
        f"steps = {scale.steps}",
        f"lr = {toml_value(float(lr))}",
        "",
        "[grid]",
        f"layers = {toml_value(list(scale.layers))}",
    ]
    for task in scale.tasks:
        options: dict[str, object] = {}
        if task == "cost-vector":
            if cost_vector is None or not Path(cost_vector).exists():
                continue
            options = {"path": str(Path(cost_vector).resolve()), "n_examples": MNIST01_TRAIN_SIZE}
            n_train = MNIST01_TRAIN_SIZE
            n_bits = 17
        else:
            built = get_task(task)
            n_train, n_bits = built.n_train, built.n_bits
        temperature = max(n_train / n_eff, 1e-6)
        groups = [("exact", ["mle", "elbo", "selbo"], {})]
        if task in scale.sampled_tasks:
            sampled = {
                "backend": "sampled",
                "shots": scale.shots,
                "train.steps": scale.sampled_steps,
            }
            groups.append(("samples", ["mle", "selbo"], sampled))
        for label, objectives, extra in groups:
            lines += [
                "",
                "[[group]]",
                f'name = "{task}/{label}"',
                "[group.base]",
                f'task = "{task}"',
                f"temperature = {toml_value(float(temperature))}",
            ]
            lines += [f"{key_literal(k)} = {toml_value(v)}" for k, v in extra.items()]
            lines += [
                f"{key_literal('task_options.' + k)} = {toml_value(v)}" for k, v in options.items()
            ]
            lines += ["[group.grid]", f"objective = {toml_value(objectives)}"]
        lines += _baseline_group(task, scale, temperature, options, n_bits)
    for task in scale.scale_tasks:
        lines += _scale_group(task, min(SCALE_SEEDS, scale.seeds))
    return "\n".join(lines) + "\n"


def _scale_group(task: str, seeds: int) -> list[str]:
    """The ``[[group]]`` lines of a task too large to enumerate: :data:`DIGITS10_RECIPE` at
    layers 0 and 1, MLE at layers 1, and the gradient baselines, in one group so that every
    arm shares the settings its comparisons pair on."""
    lines = ["", "[[group]]", f'name = "{task}/samples"', f"seeds = {seeds}", "[group.base]"]
    lines += [f'task = "{task}"']
    lines += [f"{key_literal(k)} = {toml_value(v)}" for k, v in DIGITS10_RECIPE.items()]
    lines += [
        "[group.grid]",
        "layers = [0, 1]",
        'objective = ["mle", "elbo"]',
        f"method = {toml_value(['qhn', *SCALE_BASELINES])}",
        "[[group.exclude]]",
        'objective = "mle"',
        "layers = 0",
        "[[group.exclude]]",
        f"method = {toml_value(list(SCALE_BASELINES))}",
        "layers = 1",
        "[[group.exclude]]",
        f"method = {toml_value(list(SCALE_BASELINES))}",
        'objective = "mle"',
    ]
    return lines


def _baseline_group(
    task: str, scale: ReproduceScale, temperature: float, options: dict[str, object], n_bits: int
) -> list[str]:
    """The ``[[group]]`` lines of a task's classical baselines (none when it has none)."""
    if scale.baseline_tasks is not None and task not in scale.baseline_tasks:
        return []
    methods = [m for m in scale.baselines if task != "cost-vector" or m in SEARCH_BASELINES]
    if not methods:
        return []
    lines = [
        "",
        "[[group]]",
        f'name = "{task}/baselines"',
        "[group.base]",
        f'task = "{task}"',
        f"temperature = {toml_value(float(temperature))}",
    ]
    lines += [f"{key_literal('task_options.' + k)} = {toml_value(v)}" for k, v in options.items()]
    if any(m in BUDGETED_BASELINES for m in methods):
        lines += ["[group.base.baseline]", f"budget = {2**n_bits}"]
    lines += ["[group.grid]", "layers = [0]", f"method = {toml_value(methods)}"]
    return lines


def key_literal(key: str) -> str:
    """A dotted override key as a TOML key (quoted, since it holds dots)."""
    return f'"{key}"' if "." in key else key
