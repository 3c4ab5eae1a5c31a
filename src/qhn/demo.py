"""The showcase behind ``qhn demo``: train a small QHN in seconds and say where its figures went.

It is one ordinary run (:func:`qhn.experiments.runner.run`): the SELBO with one entangling
layer on ``moons`` (13 bits, a 2-D task, so the run also draws its decision boundary), written
to a run directory like any ``qhn train``. Run again on the same directory, it finds the finished
run and only reports it.
"""

from __future__ import annotations

from pathlib import Path

from qhn.experiments.config import RunConfig

#: The run files ``qhn demo`` points to, with what each shows.
FIGURES = (
    ("curves.png", "training curves"),
    ("top_bitstrings.png", "the most probable networks, q(s) on a log axis"),
    ("decision_boundary.png", "the model average's decision boundary with the data"),
)


def demo_config(steps: int = 100, seed: int = 0) -> RunConfig:
    """The demo's run: SELBO (λ = 10), one layer, on ``moons``."""
    return RunConfig(
        task="moons",
        objective="selbo",
        lam=10.0,
        layers=1,
        train={"steps": steps, "lr": 0.1, "seed": seed},
    )


def run_demo(out: str | Path = "runs/demo-quick", *, steps: int = 100, seed: int = 0) -> str:
    """Train :func:`demo_config` into ``out`` and return the report the CLI prints: what was
    trained, its accuracy, and the path of each figure that was written."""
    from qhn.experiments.runner import run

    out = Path(out)
    config = demo_config(steps, seed)
    summary = run(config, out, resume=True)
    lines = [
        f"trained a quantum hypernetwork: {config.objective.upper()}, {config.layers} entangling "
        f"layer, on {config.task} ({summary['n_bits']} bits = {summary['n_bits']} qubits), "
        f"{summary['steps']} steps in {summary['train_seconds']:.1f} s",
        f"test accuracy: {summary['acc_bma_test']:.3f} (model average), "
        f"{summary['acc_mode_test']:.3f} (most probable network); "
        f"E_q[C] = {summary['expected_cost']:.4f}, optimum C* = {summary['optimum_value']:.4f}",
        f"run directory: {out} (config.toml, history.jsonl, summary.json)",
    ]
    written = [(out / name, what) for name, what in FIGURES if (out / name).is_file()]
    if written:
        lines.append("figures:")
        lines.extend(f"  {path}  ({what})" for path, what in written)
    else:
        lines.append("no figures were written (install matplotlib: pip install 'qhn[plot]')")
    lines.append("next: qhn tasks, qhn config keys, qhn train --help; the docs: make docs")
    return "\n".join(lines)
