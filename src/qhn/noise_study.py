"""The reference QHN noise study (METHOD.md §8): stored parameter sets re-evaluated under noise.

Each row of the parameter files (``params/run*.txt``: RY angles, RZ angles, optionally the final
loss; METHOD.md §5) is the ``qhn_reference`` circuit on ``n`` qubits (``n`` from the cost file's
length ``2**n``, the layers from the row length). For every noise scale ``x`` it gets ``E_x[C]``
and the mass on the near-optimal set ``{s : C(s) ≤ min C + near_tol}`` under the reference model
(``p1 = 0.001·x`` after every RY and RZ, ``p2 = 0.00375·x`` after every CNOT, no readout noise),
all scales from one trajectory set per row (:mod:`qhn.backends.scaled_trajectories`).

Outputs (:func:`write_noise_study`, atomic, results before the figure): ``runs.csv`` (one line per
row and scale: ``file,row,x,expected_cost,expected_cost_se,mass_near_optimal``, ``row`` 0-based
within its file, ``expected_cost_se`` the trajectory estimator's standard error), ``summary.csv``
(per scale: means over the rows with Student-t 95 % intervals, which carry both the spread between
rows and each row's Monte Carlo error, and the Monte Carlo standard error of the mean alone,
``sqrt(Σ se²)/N``), ``study.json`` (settings and checks) and ``noise_study.png``.
"""

from __future__ import annotations

import csv
import io
import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from qhn.backends.scaled_trajectories import REFERENCE_P1, REFERENCE_P2, ScaledEstimator
from qhn.circuits.ansatz import qhn_reference, reference_params_from_row
from qhn.data.cost_vector import load_cost_vector
from qhn.errors import ConfigError
from qhn.experiments.stats import t_interval
from qhn.io import atomic_write_json, atomic_write_png, atomic_write_text
from qhn.threads import torch_threads

__all__ = [
    "DEFAULT_FILES",
    "DEFAULT_SCALES",
    "HEAP_THRESHOLDS",
    "RUNS_COLUMNS",
    "NoiseStudy",
    "NoiseStudyConfig",
    "load_rows",
    "parse_scales",
    "run_noise_study",
    "summary_table",
    "write_noise_study",
]

DEFAULT_SCALES = tuple(round(0.2 * i, 10) for i in range(11))
DEFAULT_FILES = tuple(f"run{k}.txt" for k in range(1, 11))
DEFAULT_TRAJECTORIES = 192
#: Near-optimal set of the MNIST landscape: four bitstrings within 7e-7 of the minimum, the next
#: cluster 1.8e-5 above it (METHOD.md §6).
DEFAULT_NEAR_TOL = 1e-6
#: :func:`qhn.heap.keep_freed_memory`'s thresholds for the study (its command and benchmark):
#: chunks of trajectory states of tens of MiB are allocated and freed for every row, and kept on
#: the heap their page faults cost 0.3 s instead of 3–4 s of system time per 3 rows.
HEAP_THRESHOLDS = (2**30, 2**31 - 1)
RUNS_COLUMNS = ("file", "row", "x", "expected_cost", "expected_cost_se", "mass_near_optimal")
SUMMARY_COLUMNS = (
    "x",
    "p1",
    "p2",
    "runs",
    "expected_cost_mean",
    "expected_cost_low",
    "expected_cost_high",
    "expected_cost_mc_se",
    "mass_near_optimal_mean",
    "mass_near_optimal_low",
    "mass_near_optimal_high",
    "mass_near_optimal_mc_se",
)


def parse_scales(text: str) -> tuple[float, ...]:
    """``"0,0.2,2"`` → ``(0.0, 0.2, 2.0)``: finite, ``≥ 0``, distinct."""
    items = [item.strip() for item in str(text).split(",")]
    if not items or any(not item for item in items):
        raise ConfigError(f"--scales: expected comma-separated numbers like 0,0.2,2, got {text!r}")
    values = []
    for item in items:
        try:
            value = float(item)
        except ValueError:
            raise ConfigError(f"--scales: {item!r} is not a number (in {text!r})") from None
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"--scales: {item!r} must be a finite number >= 0")
        values.append(value)
    if len(set(values)) != len(values):
        raise ConfigError(f"--scales: repeated value in {text!r}")
    return tuple(values)


@dataclass(frozen=True)
class NoiseStudyConfig:
    """What to evaluate; see the module docstring."""

    params_dir: Path
    costs: Path
    scales: tuple[float, ...] = DEFAULT_SCALES
    files: tuple[str, ...] = DEFAULT_FILES
    trajectories: int = DEFAULT_TRAJECTORIES
    seed: int = 0
    near_tol: float = DEFAULT_NEAR_TOL
    threads: int | None = None
    p1: float = REFERENCE_P1
    p2: float = REFERENCE_P2

    def __post_init__(self) -> None:
        object.__setattr__(self, "params_dir", Path(self.params_dir))
        object.__setattr__(self, "costs", Path(self.costs))
        scales = tuple(float(x) for x in self.scales)
        if not scales:
            raise ConfigError("give at least one noise scale (--scales)")
        object.__setattr__(self, "scales", scales)
        if not self.files:
            raise ConfigError("give at least one parameter file (--files)")
        t = self.trajectories
        if isinstance(t, bool) or not isinstance(t, int) or t < 2:
            raise ConfigError(f"--trajectories must be an integer >= 2, got {t!r}")
        if not (math.isfinite(self.near_tol) and self.near_tol >= 0):
            raise ConfigError(f"--near-tol must be a finite number >= 0, got {self.near_tol!r}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {self.threads!r}")
        worst = max(scales) * max(self.p1, self.p2)
        if worst >= 1:
            raise ConfigError(
                f"--scales: x = {max(scales):g} gives an error probability {worst:g} >= 1 "
                f"(p2 = {self.p2:g}·x); use scales below {1 / max(self.p1, self.p2):g}"
            )


@dataclass(frozen=True)
class ParamRow:
    file: str
    row: int
    theta: torch.Tensor
    stored_loss: float | None


def load_rows(params_dir: Path, files: Sequence[str], n_qubits: int) -> tuple[list[ParamRow], int]:
    """Read every row of ``files`` in ``params_dir``; returns the rows and the number of paper
    layers ``L`` (each row holds ``4·L·n`` angles, optionally plus the final loss)."""
    if not params_dir.is_dir():
        raise ConfigError(f"--params: directory not found: {str(params_dir)!r}")
    per_layer = 4 * n_qubits
    rows: list[ParamRow] = []
    layers: int | None = None
    for name in files:
        path = params_dir / name
        if not path.is_file():
            raise ConfigError(f"--files: {name!r} not found in {str(params_dir)!r}")
        index = 0
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            try:
                values = [float(v) for v in line.split()]
            except ValueError:
                raise ConfigError(f"{name} line {number + 1}: not a row of numbers") from None
            m = len(values)
            if m % per_layer == 0 and m:
                found, stored = m // per_layer, None
            elif m > 1 and (m - 1) % per_layer == 0:
                found, stored = (m - 1) // per_layer, values[-1]
            else:
                raise ConfigError(
                    f"{name} line {number + 1}: {m} values, but a qhn_reference row on "
                    f"n = {n_qubits} qubits (from the cost file) holds 4·L·n = {per_layer}·L "
                    "angles, optionally plus the final loss; check --costs and --params"
                )
            if layers is not None and found != layers:
                raise ConfigError(
                    f"{name} line {number + 1}: {found} layers, but earlier rows have {layers}"
                )
            layers = found
            theta = reference_params_from_row(values, n_qubits, found)
            rows.append(ParamRow(name, index, theta, stored))
            index += 1
    if not rows or layers is None:
        raise ConfigError(f"--files: no parameter rows in {', '.join(files)}")
    return rows, layers


@dataclass
class NoiseStudy:
    """Per-row estimates and the settings that produced them."""

    config: NoiseStudyConfig
    n_qubits: int
    layers: int
    optimum: float
    near_optimal: list[int]
    runs: list[dict[str, object]] = field(default_factory=list)
    mass_se: list[float] = field(default_factory=list)
    stored_loss_error: float | None = None
    seconds: float = 0.0

    def summary(self) -> list[dict[str, float]]:
        """Per scale: means over rows, t-intervals (95 %) and Monte Carlo standard errors."""
        out = []
        scales = self.config.scales
        for i, x in enumerate(scales):
            lines = self.runs[i :: len(scales)]
            cost = t_interval([float(r["expected_cost"]) for r in lines])
            mass = t_interval([float(r["mass_near_optimal"]) for r in lines])
            ses = [float(r["expected_cost_se"]) for r in lines]
            mass_ses = self.mass_se[i :: len(scales)]
            n = len(lines)
            out.append(
                {
                    "x": x,
                    "p1": self.config.p1 * x,
                    "p2": self.config.p2 * x,
                    "runs": n,
                    "expected_cost_mean": cost.mean,
                    "expected_cost_low": cost.low,
                    "expected_cost_high": cost.high,
                    "expected_cost_mc_se": math.sqrt(math.fsum(s * s for s in ses)) / n,
                    "mass_near_optimal_mean": mass.mean,
                    "mass_near_optimal_low": mass.low,
                    "mass_near_optimal_high": mass.high,
                    "mass_near_optimal_mc_se": math.sqrt(math.fsum(s * s for s in mass_ses)) / n,
                }
            )
        return out


def _row_seed(seed: int, file: str, row: int) -> int:
    return zlib.crc32(f"{seed}:{file}:{row}".encode())


def run_noise_study(
    config: NoiseStudyConfig, progress: Callable[[int, int], None] | None = None
) -> NoiseStudy:
    """Evaluate every row at every scale. ``progress(done, total)`` is called after each row."""
    costs = load_cost_vector(config.costs)
    n = int(math.log2(len(costs)))
    rows, layers = load_rows(config.params_dir, config.files, n)
    optimum = float(costs.min())
    near = (costs <= optimum + config.near_tol).to(torch.float64)
    estimator = ScaledEstimator(
        qhn_reference(n, layers),
        torch.stack([costs, near], 1),
        config.scales,
        p1=config.p1,
        p2=config.p2,
    )
    study = NoiseStudy(
        config, n, layers, optimum, torch.nonzero(near).flatten().tolist(), seconds=0.0
    )
    start = time.perf_counter()
    worst = None
    with torch_threads(config.threads):
        for done, row in enumerate(rows, 1):
            generator = torch.Generator().manual_seed(_row_seed(config.seed, row.file, row.row))
            est = estimator.estimate(row.theta, config.trajectories, generator)
            if row.stored_loss is not None:
                gap = abs(float(est.noiseless[0]) - row.stored_loss)
                worst = gap if worst is None else max(worst, gap)
            for i, x in enumerate(config.scales):
                study.runs.append(
                    {
                        "file": row.file,
                        "row": row.row,
                        "x": x,
                        "expected_cost": float(est.mean[i, 0]),
                        "expected_cost_se": float(est.se[i, 0]),
                        "mass_near_optimal": float(est.mean[i, 1]),
                    }
                )
                study.mass_se.append(float(est.se[i, 1]))
            if progress is not None:
                progress(done, len(rows))
    study.stored_loss_error = worst
    study.seconds = time.perf_counter() - start
    return study


def _csv(rows: Sequence[dict[str, object]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def write_noise_study(study: NoiseStudy, out: Path, *, figure: bool = True) -> list[Path]:
    """Write ``runs.csv``, ``summary.csv``, ``study.json``, then (``figure``) the figure."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = study.summary()
    paths = [out / "runs.csv", out / "summary.csv", out / "study.json"]
    atomic_write_text(paths[0], _csv(study.runs, RUNS_COLUMNS))
    atomic_write_text(paths[1], _csv(summary, SUMMARY_COLUMNS))
    cfg = study.config
    atomic_write_json(
        paths[2],
        {
            "params_dir": str(cfg.params_dir),
            "costs": str(cfg.costs),
            "files": list(cfg.files),
            "rows": len(study.runs) // len(cfg.scales),
            "n_qubits": study.n_qubits,
            "layers": study.layers,
            "noise": {"p1": cfg.p1, "p2": cfg.p2, "readout": 0.0, "scales": list(cfg.scales)},
            "trajectories_per_row": cfg.trajectories,
            "seed": cfg.seed,
            "optimum": study.optimum,
            "near_tol": cfg.near_tol,
            "near_optimal_indices": study.near_optimal,
            "max_noiseless_vs_stored_loss": study.stored_loss_error,
            "seconds": study.seconds,
            "threads": cfg.threads if cfg.threads is not None else torch.get_num_threads(),
        },
    )
    if not figure:
        return paths
    from qhn.plots.noise_study import noise_study_figure

    figure_path = out / "noise_study.png"
    atomic_write_png(figure_path, noise_study_figure(summary, study.optimum, study.near_optimal))
    paths.append(figure_path)
    return paths


def summary_table(summary: Sequence[dict[str, float]]) -> list[str]:
    """The summary as aligned text lines (what ``qhn noise-study`` prints)."""
    lines = [
        f"{'x':>5}  {'E_q[C] mean [95% CI]':>36}  {'MC se':>8}  {'near-opt mass [95% CI]':>30}"
    ]
    for s in summary:
        lines.append(
            f"{s['x']:5.2f}  {s['expected_cost_mean']:.5f} "
            f"[{s['expected_cost_low']:.5f}, {s['expected_cost_high']:.5f}]{'':>7}"
            f"  {s['expected_cost_mc_se']:8.1e}  {s['mass_near_optimal_mean']:.4f} "
            f"[{s['mass_near_optimal_low']:.4f}, {s['mass_near_optimal_high']:.4f}]"
        )
    return lines
