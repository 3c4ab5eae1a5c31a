"""Trainability of the quantum hypernetwork, measured: success rate per init × optimizer × layers,
evaluations to success, and the gradient at initialization against layers and n.

``runs``: MLE (the objective the issue found stuck) on each task, for every init (``uniform``,
``small``, ``warm``), optimizer (Adam, L-BFGS) and layer count, over seeds. A run *succeeds* when
its mode network is in the optimal set ``{s : C(s) ≤ C* + ε}``, ``ε = tol + rtol·|C*|`` with the
landscape's ``tol = rtol = 1e-9`` (so: the mode is an exact optimum), or when the mode's test
accuracy reaches the lowest test accuracy of the optimal set. After every optimizer step the
exact ``q_θ`` is read (off the counters) and the first step that succeeds is recorded with the
network-loss evaluations spent by then (``qhn.experiments.runner.training_evaluations``, warm-up
included). Each run's row goes to ``OUT/runs.jsonl`` as it finishes; a rerun skips rows present.

``gradients``: ``‖∇_θ E_q[C]‖`` and ``Var_θ[∂E_q[C]/∂θ_0]`` over random initializations for
a fixed random cost vector ``C ~ U(0, 1)^{2^n}`` (the barren-plateau check), per init, n and
layers.

``table``: Markdown tables of both, from the JSON lines.

Run (the machine is shared: nice, bounded)::

    nice -n 10 python benchmarks/trainability.py runs --out /tmp/trainability --workers 2
    nice -n 10 python benchmarks/trainability.py gradients --out /tmp/trainability
    python benchmarks/trainability.py table --out /tmp/trainability
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import torch

TASKS = {
    # task: (Adam steps, L-BFGS steps, layers)
    "qhn-gaussian": (60, 3, (0, 1, 2)),
    "moons": (300, 15, (0, 1, 2)),
}
INITS = ("uniform", "small", "warm")
OPTIMIZERS = ("adam", "lbfgs")
ADAM_LR = 0.05
RESTARTS = 3


def _config(
    task: str, init: str, optimizer: str, layers: int, seed: int, budget: tuple[int, int] | None
):
    from qhn.experiments.config import RunConfig, apply_overrides

    adam_steps, lbfgs_steps = budget or TASKS[task][:2]
    steps, lr = (adam_steps, ADAM_LR) if optimizer == "adam" else (lbfgs_steps, 1.0)
    return apply_overrides(
        RunConfig(task=task),
        [
            "objective=mle",
            f"layers={layers}",
            f"init={init}",
            f"train.optimizer={optimizer}",
            f"train.steps={steps}",
            f"train.lr={lr}",
            f"train.seed={seed}",
        ],
    )


class _Watch:
    """After each step: is the mode an exact optimum, or as good on test? (Off the counters.)"""

    def __init__(self, built, warm: int) -> None:
        self.built, self.warm = built, warm
        landscape = built.landscape
        self.mask = landscape.optimal_mask()
        self.test_floor = (landscape.optimum_accuracy_range.get("test") or (math.inf,))[0]
        self.n = built.task.n_bits
        self.first: dict[str, int | None] = {"optimum": None, "test": None}

    def mode(self, model) -> int:
        with torch.no_grad():
            probs = model.backend.inner.probs(model.circuit, model.theta.detach())
        return int(torch.argmax(probs))

    def test_accuracy(self, index: int) -> float:
        from qhn.bits import index_to_bits

        bits = index_to_bits(torch.tensor([index]), self.n)
        return float(self.built.task.accuracy(bits, "test")[0])

    def on_step(self, record: dict[str, Any], model) -> bool:
        from qhn.experiments.runner import training_evaluations

        spent = self.warm + training_evaluations(record, self.n, exact=True)
        index = self.mode(model)
        if self.first["optimum"] is None and bool(self.mask[index]):
            self.first["optimum"] = spent
        if self.first["test"] is None and self.test_accuracy(index) >= self.test_floor:
            self.first["test"] = spent
        return False


def one_run(
    task: str,
    init: str,
    optimizer: str,
    layers: int,
    seed: int,
    cache: str,
    budget: tuple[int, int] | None = None,
) -> dict:
    from qhn.experiments.runner import build_run, run_threads, training_evaluations
    from qhn.experiments.warm_start import warm_start
    from qhn.train.loop import fit

    started = time.perf_counter()
    config = _config(task, init, optimizer, layers, seed, budget)
    with run_threads():
        built = build_run(config, cache_dir=cache)
        warm = warm_start(built, cache_dir=cache) if init == "warm" else 0
        watch = _Watch(built, warm)
        result = fit(
            built.model, built.objective, config.train, callbacks=[watch], checkpoint_seconds=None
        )
        mode = watch.mode(built.model)
        with torch.no_grad():
            probs = built.model.backend.inner.probs(built.model.circuit, built.model.theta)
        landscape = built.landscape
    last = result.history[-1]
    return {
        "task": task,
        "init": init,
        "optimizer": optimizer,
        "layers": layers,
        "seed": seed,
        "steps": config.train.steps,
        "final_loss": float(last["loss"]),
        "grad_norm_init": float(result.history[0]["grad_norm"]),
        "expected_cost": float(probs @ landscape.train_costs),
        "optimum_value": landscape.optimum_value,
        "mode_cost": float(landscape.train_costs[mode]),
        "mode_optimal": bool(watch.mask[mode]),
        "mode_test_accuracy": watch.test_accuracy(mode),
        "optimum_test_floor": watch.test_floor,
        "mass_optimal": float(probs[watch.mask].sum()),
        "evaluations": warm + training_evaluations(last, built.task.n_bits, exact=True),
        "evals_to_optimum": watch.first["optimum"],
        "evals_to_test": watch.first["test"],
        "seconds": time.perf_counter() - started,
    }


def _key(row: dict) -> tuple:
    return (row["task"], row["init"], row["optimizer"], row["layers"], row["seed"])


def run_all(
    out: Path,
    seeds: int,
    workers: int,
    tasks: list[str],
    inits: tuple[str, ...] = INITS,
    budget: tuple[int, int] | None = None,
) -> None:
    """Every run of ``tasks`` × ``inits`` × optimizers × layers × seeds not yet in
    ``out/runs.jsonl``; ``budget``: (Adam steps, L-BFGS steps) instead of :data:`TASKS`'."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "runs.jsonl"
    done = set()
    if path.exists():
        done = {_key(json.loads(line)) for line in path.read_text().splitlines() if line}
    jobs = [
        (task, init, opt, layers, seed)
        for task in tasks
        for layers in TASKS[task][2]
        for init in inits
        for opt in OPTIMIZERS
        for seed in range(seeds)
        if not (init == "warm" and layers == 0)
    ]
    jobs = [job for job in jobs if job not in done]
    print(f"{len(jobs)} runs to do", flush=True)
    cache = str(out / "landscapes")
    for task in tasks:  # enumerate each landscape once, before the workers share the cache
        from qhn.experiments.runner import build_run

        build_run(_config(task, "uniform", "adam", 0, 0, budget), cache_dir=cache)
    spawn = multiprocessing.get_context("spawn")  # fork after torch's thread pool can hang
    with ProcessPoolExecutor(workers, mp_context=spawn) as pool, path.open("a") as handle:
        futures = [pool.submit(one_run, *job, cache, budget) for job in jobs]
        for future in as_completed(futures):
            row = future.result()
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            print(_key(row), row["mode_optimal"], f"{row['seconds']:.1f}s", flush=True)


# --- gradients at initialization -------------------------------------------------------------


def gradient_stats(n: int, layers: int, init: str, inits: int) -> dict:
    from qhn.backends.statevector import StatevectorBackend
    from qhn.circuits import build_ansatz
    from qhn.hypernetwork import QuantumHypernetwork

    circuit = build_ansatz("hardware_efficient", n, layers)
    cost = torch.rand(2**n, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
    norms, first = [], []
    started = time.perf_counter()
    for i in range(inits):
        model = QuantumHypernetwork(
            circuit,
            StatevectorBackend(),
            "backprop",
            init=init,
            generator=torch.Generator().manual_seed(1000 * n + i),
        )
        value = model.probs() @ cost
        (grad,) = torch.autograd.grad(value, model.theta)
        norms.append(float(grad.norm()))
        first.append(float(grad[0]))
    return {
        "n": n,
        "layers": layers,
        "init": init,
        "inits": inits,
        "params": circuit.n_params,
        "grad_norm_mean": statistics.fmean(norms),
        "grad0_var": statistics.variance(first),
        "grad_sq_per_param": statistics.fmean(x * x for x in norms) / circuit.n_params,
        "seconds": time.perf_counter() - started,
    }


def gradients_all(out: Path, ns: list[int], layer_counts: list[int], inits: int) -> None:
    from qhn.threads import torch_threads

    out.mkdir(parents=True, exist_ok=True)
    path = out / "gradients.jsonl"
    done = set()
    if path.exists():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line]
        done = {(r["n"], r["layers"], r["init"]) for r in rows}
    with torch_threads(1), path.open("a") as handle:
        for n, layers, init in itertools.product(ns, layer_counts, ("uniform", "small")):
            if (n, layers, init) in done:
                continue
            row = gradient_stats(n, layers, init, inits)
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            print(n, layers, init, f"{row['grad0_var']:.3g}", f"{row['seconds']:.1f}s", flush=True)


# --- tables ----------------------------------------------------------------------------------


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.3g}" if values else "—"


def best_of_k(group: list[dict], k: int) -> float:
    """Success rate of the best of ``k`` restarts by final training loss, averaged over every
    ``k``-subset of the seeds (an unbiased estimate of it)."""
    subsets = list(itertools.combinations(group, k))
    hits = [min(s, key=lambda r: r["final_loss"])["mode_optimal"] for s in subsets]
    return sum(hits) / len(hits)


def runs_table(rows: list[dict]) -> list[str]:
    lines = [
        "| task | layers | init | optimizer | seeds | success (mode = optimum) | "
        f"best of {RESTARTS} | success (test acc) | median evals to optimum | evals per run | "
        "median ‖∇‖ at init | mean mass on optimum | median E_q[C] − C* |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(
            (row["task"], row["layers"], INITS.index(row["init"]), row["optimizer"]), []
        ).append(row)
    for (task, layers, init, opt), group in sorted(groups.items()):
        n = len(group)
        ok = sum(r["mode_optimal"] for r in group)
        test = sum(r["evals_to_test"] is not None for r in group)
        reach = [r["evals_to_optimum"] for r in group if r["evals_to_optimum"] is not None]
        best = f"{best_of_k(group, RESTARTS):.2f}" if n >= RESTARTS else "—"
        lines.append(
            f"| {task} | {layers} | {INITS[init]} | {opt} | {n} | {ok}/{n} | {best} | {test}/{n} "
            f"| {_median(reach)} | {_median([r['evaluations'] for r in group])} "
            f"| {_median([r['grad_norm_init'] for r in group])} "
            f"| {statistics.fmean(r['mass_optimal'] for r in group):.2f} "
            f"| {_median([r['expected_cost'] - r['optimum_value'] for r in group])} |"
        )
    return lines


def gradients_table(rows: list[dict]) -> list[str]:
    layer_counts = sorted({r["layers"] for r in rows})
    lines = [
        "| n | init | " + " | ".join(f"L={L}" for L in layer_counts) + " |",
        "|---|---|" + "---|" * len(layer_counts),
    ]
    found = {(r["n"], r["init"], r["layers"]): r for r in rows}
    for n in sorted({r["n"] for r in rows}):
        for init in ("uniform", "small"):
            cells = []
            for L in layer_counts:
                r = found.get((n, init, L))
                cells.append(
                    "—" if r is None else f"{r['grad0_var']:.2e} ({r['grad_norm_mean']:.2e})"
                )
            lines.append(f"| {n} | {init} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("runs", "gradients", "table"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/trainability"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--n", type=int, nargs="*", default=[6, 10, 14, 18])
    parser.add_argument("--layers", type=int, nargs="*", default=[1, 2, 3, 4, 5, 6])
    parser.add_argument("--inits", type=int, default=50)
    parser.add_argument("--init", nargs="*", default=list(INITS), help="runs: these inits")
    parser.add_argument("--budget", type=int, nargs=2, default=None, help="Adam, L-BFGS steps")
    args = parser.parse_args()
    if args.what == "runs":
        budget = tuple(args.budget) if args.budget else None
        run_all(args.out, args.seeds, args.workers, args.tasks, tuple(args.init), budget)
    elif args.what == "gradients":
        gradients_all(args.out, args.n, args.layers, args.inits)
    else:
        if (args.out / "runs.jsonl").exists():
            print("\n".join(runs_table(_rows(args.out / "runs.jsonl"))))
        if (args.out / "gradients.jsonl").exists():
            print()
            print("\n".join(gradients_table(_rows(args.out / "gradients.jsonl"))))


if __name__ == "__main__":
    main()
