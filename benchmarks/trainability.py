"""Trainability of the quantum hypernetwork, measured: success rate per init × optimizer × layers,
evaluations to success, and the gradient at initialization against layers and n.

``runs``: MLE (the objective the issue found stuck; the default) or, with ``--objective``, the
ELBO and SELBO, on each task, for every init (``uniform``, ``small``, ``warm``), optimizer (Adam,
L-BFGS) and layer count, over seeds. A run *succeeds* when
its mode network is in the optimal set ``{s : C(s) ≤ C* + ε}``, ``ε = tol + rtol·|C*|`` with the
landscape's ``tol = rtol = 1e-9`` (so: the mode is an exact optimum), or when the mode's test
accuracy reaches the lowest test accuracy of the optimal set. After every optimizer step the
exact ``q_θ`` is read (off the counters) and the first step that succeeds is recorded with the
network-loss evaluations spent by then (``qhn.experiments.runner.training_evaluations``, warm-up
included). Each run's row goes to ``OUT/runs.jsonl`` as it finishes; a rerun skips rows present.

ELBO and SELBO run at the reproduction's prior weight (``qhn.experiments.reproduce``: temperature
``T = N / N_eff`` with ``N_eff = 100``, ``β = 1``, ``λ = 10``). Their optimum is not a point mass
on the optimal set, so besides the mode criterion each row measures the objective's own optimum
gap over all distributions (``qhn.inference.optimum``): for the ELBO the closed form
``log Z`` of the tempered posterior ``q* ∝ p·exp(ℓ)``, the gap ``log Z − ELBO(q)`` and
``KL(q ‖ q*)`` (equal up to rounding); for the SELBO the best distribution found numerically
(bracketed by a Frank–Wolfe bound), the gap to it, and the certified bound on the run's own gap.
Rows without ``objective`` (written before it existed) are MLE.

``gradients``: ``‖∇_θ E_q[C]‖`` and ``Var_θ[∂E_q[C]/∂θ_0]`` over random initializations for
a fixed random cost vector ``C ~ U(0, 1)^{2^n}`` (the barren-plateau check), per init, n and
layers.

``optima``: per task and objective, the best distribution over all ``q`` and the best point mass
on the optimal set (what MLE's optimum scores on that objective).

``table``: Markdown tables of both, from the JSON lines.

Run (the machine is shared: nice, bounded)::

    nice -n 10 python benchmarks/trainability.py runs --out /tmp/trainability --workers 2
    nice -n 15 python benchmarks/trainability.py runs --out /tmp/trainability_vi --workers 1 \
        --tasks moons --objective elbo selbo
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
OBJECTIVES = ("mle", "elbo", "selbo")
ADAM_LR = 0.05
RESTARTS = 3


def _prior_weight(task: str, objective: str) -> list[str]:
    """The reproduction's prior weight for ELBO/SELBO (its defaults, not a copy of them); MLE
    keeps ``T = 1`` so that the rows written before ``--objective`` existed mean the same."""
    import inspect

    from qhn.data import get_task
    from qhn.experiments.reproduce import reproduce_sweep

    if objective == "mle":
        return []
    defaults = inspect.signature(reproduce_sweep).parameters
    n_eff, lam = defaults["n_eff"].default, defaults["lam"].default
    temperature = max(get_task(task).n_train / n_eff, 1e-6)  # as reproduce_sweep writes it
    return [f"temperature={temperature!r}", "beta=1.0", f"lam={float(lam)!r}"]


def _config(
    task: str,
    init: str,
    optimizer: str,
    layers: int,
    seed: int,
    budget: tuple[int, int] | None,
    objective: str = "mle",
):
    from qhn.experiments.config import RunConfig
    from qhn.experiments.overrides import apply_overrides

    adam_steps, lbfgs_steps = budget or TASKS[task][:2]
    steps, lr = (adam_steps, ADAM_LR) if optimizer == "adam" else (lbfgs_steps, 1.0)
    return apply_overrides(
        RunConfig(task=task),
        [
            f"objective={objective}",
            *_prior_weight(task, objective),
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


_REFERENCES: dict[tuple[str, str], dict] = {}


def reference(built) -> dict:
    """The best distribution of ``built``'s objective over all ``q`` (once per task and objective
    in a process): its value, an upper bound on the optimum, and its mass on the optimal set and
    ``E[C]``; for the ELBO also ``log q*`` (closed form)."""
    from qhn.inference.optimum import exact_objective, free_optimum, tempered_posterior

    key = (built.config.task, built.config.objective)
    if key not in _REFERENCES:
        landscape, objective = built.landscape, built.objective
        if built.config.objective == "elbo":
            log_q, value = tempered_posterior(
                built.data_term.vector, objective.prior.log_probs_vector(), objective.beta
            )
            q, upper = log_q.exp(), value
        elif built.config.objective == "mle":  # linear in q: the best vertex
            log_q, q = None, torch.zeros_like(landscape.train_costs, dtype=torch.float64)
            q[int(torch.argmax(built.data_term.vector))] = 1.0
            value = upper = float(built.data_term.vector.max())
        else:
            found = free_optimum(exact_objective(objective), 2**built.task.n_bits)
            log_q, value, upper, q = None, found.value, found.upper, found.q
        _REFERENCES[key] = {
            "value": value,
            "upper": upper,
            "log_q": log_q,
            "mass_optimal": float(q[landscape.optimal_mask()].sum()),
            "expected_cost": float(q @ landscape.train_costs),
        }
    return _REFERENCES[key]


def optima(out: Path, tasks: list[str], objectives: list[str]) -> None:
    """Per task and objective: the best distribution (as in the rows) and the best point mass on
    the optimal set, ``max_{s optimal} f(δ_s)`` — what MLE's optimum scores on this objective."""
    from qhn.experiments.runner import build_run, run_threads
    from qhn.inference.optimum import exact_objective

    print(
        "| task | objective | optimum f* | best point mass on the optimal set | its gap "
        "| q*: mass on optimum | q*: E[C] − C* |\n|---|---|---|---|---|---|---|",
        flush=True,
    )
    with run_threads():
        for task, objective in itertools.product(tasks, objectives):
            config = _config(task, "uniform", "adam", 0, 0, None, objective)
            built = build_run(config, cache_dir=str(out / "landscapes"))
            ref, f = reference(built), exact_objective(built.objective)
            best = -math.inf
            for index in built.landscape.optimal_mask().nonzero().flatten().tolist():
                vertex = torch.zeros(2**built.task.n_bits, dtype=torch.float64)
                vertex[index] = 1.0
                with torch.no_grad():
                    best = max(best, float(f(vertex)))
            print(
                f"| {task} | {objective} | {ref['value']:.4f} (≤ {ref['upper']:.4f}) "
                f"| {best:.4f} | {ref['value'] - best:.3g} | {ref['mass_optimal']:.3f} "
                f"| {ref['expected_cost'] - built.landscape.optimum_value:.3g} |",
                flush=True,
            )


def optimum_gap(built, probs: torch.Tensor) -> dict:
    """The final ``q``'s objective value and its gap to the best distribution (module docstring)."""
    from qhn.inference.optimum import exact_objective, frank_wolfe_bound, kl_divergence

    if built.config.objective == "mle":
        return {}
    ref = reference(built)
    f = exact_objective(built.objective)
    with torch.no_grad():
        value = float(f(probs))
    row = {
        "objective_value": value,
        "optimum_objective": ref["value"],
        "optimum_upper": ref["upper"],
        "optimum_gap": ref["value"] - value,
        "reference_mass_optimal": ref["mass_optimal"],
        "reference_expected_cost": ref["expected_cost"],
    }
    if ref["log_q"] is not None:
        row["kl_to_optimum"] = built.objective.beta * kl_divergence(probs, ref["log_q"])
    else:
        row["gap_bound"] = frank_wolfe_bound(f, probs) - value
    return row


def one_run(
    task: str,
    init: str,
    optimizer: str,
    layers: int,
    seed: int,
    cache: str,
    budget: tuple[int, int] | None = None,
    objective: str = "mle",
) -> dict:
    from qhn.experiments.runner import build_run, run_threads, training_evaluations
    from qhn.experiments.warm_start import warm_start
    from qhn.train.loop import fit

    started = time.perf_counter()
    config = _config(task, init, optimizer, layers, seed, budget, objective)
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
        gap = optimum_gap(built, probs.detach().to(torch.float64))
    last = result.history[-1]
    return {
        "task": task,
        "objective": objective,
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
        **gap,
        "seconds": time.perf_counter() - started,
    }


def _objective(row: dict) -> str:
    return row.get("objective", "mle")


def _key(row: dict) -> tuple:
    return (row["task"], _objective(row), row["init"], row["optimizer"], row["layers"], row["seed"])


def run_all(
    out: Path,
    seeds: int,
    workers: int,
    tasks: list[str],
    inits: tuple[str, ...] = INITS,
    budget: tuple[int, int] | None = None,
    objectives: tuple[str, ...] = ("mle",),
    optimizers: tuple[str, ...] = OPTIMIZERS,
) -> None:
    """Every run of ``tasks`` × ``objectives`` × ``inits`` × optimizers × layers × seeds not yet
    in ``out/runs.jsonl``; ``budget``: (Adam steps, L-BFGS steps) instead of :data:`TASKS`'."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "runs.jsonl"
    done = set()
    if path.exists():
        done = {_key(json.loads(line)) for line in path.read_text().splitlines() if line}
    jobs = [
        (task, objective, init, opt, layers, seed)
        for task in tasks
        for objective in objectives
        for layers in TASKS[task][2]
        for init in inits
        for opt in optimizers
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
        futures = [
            pool.submit(one_run, task, init, opt, layers, seed, cache, budget, objective)
            for task, objective, init, opt, layers, seed in jobs
        ]
        for future in as_completed(futures):
            row = future.result()
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            gap = f" gap {row['optimum_gap']:.3g}" if "optimum_gap" in row else ""
            print(_key(row), row["mode_optimal"], f"{row['seconds']:.1f}s{gap}", flush=True)


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


def _groups(rows: list[dict]) -> list[tuple[tuple, list[dict]]]:
    """Rows by (task, objective, layers, init, optimizer), in the tables' order."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        key = (row["task"], _objective(row), row["layers"], row["init"], row["optimizer"])
        groups.setdefault(key, []).append(row)
    order = {name: i for i, name in enumerate(OBJECTIVES + INITS + OPTIMIZERS)}

    def rank(key: tuple) -> tuple:
        task, objective, layers, init, opt = key
        return (task, order[objective], layers, order[init], order[opt])

    return sorted(groups.items(), key=lambda kv: rank(kv[0]))


def brief_table(rows: list[dict]) -> list[str]:
    """Runs whose mode is an optimum, of the seeds: init / optimizer × (task, objective, layers)."""
    cells: dict[tuple, str] = {}
    columns: list[tuple] = []
    for (task, objective, layers, init, opt), group in _groups(rows):
        if (task, objective, layers) not in columns:
            columns.append((task, objective, layers))
        ok = sum(r["mode_optimal"] for r in group)
        cells[(init, opt, task, objective, layers)] = f"{ok}/{len(group)}"
    lines = [
        "| init / optimizer | " + " | ".join(f"{t} {o} L{L}" for t, o, L in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for init, opt in itertools.product(INITS, OPTIMIZERS):
        row = [cells.get((init, opt, *column), "—") for column in columns]
        if any(cell != "—" for cell in row):
            lines.append(f"| {init} / {opt} | " + " | ".join(row) + " |")
    return lines


def gap_table(rows: list[dict]) -> list[str]:
    """ELBO/SELBO: the final objective against the best distribution's (module docstring)."""
    lines = [
        "| task | objective | layers | init | optimizer | seeds | optimum f* | median f(q) "
        "| median gap [min, max] | median KL(q‖q*) or certified gap bound "
        "| mean mass on optimum: q (q*) | median E_q[C] − C* (E_q*[C] − C*) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (task, objective, layers, init, opt), group in _groups(rows):
        if objective == "mle":
            continue
        gaps = [r["optimum_gap"] for r in group]
        side = "kl_to_optimum" if objective == "elbo" else "gap_bound"
        ref = group[0]
        optimum = f"{ref['optimum_objective']:.4f}"
        if ref["optimum_upper"] - ref["optimum_objective"] > 5e-5:
            optimum += f" (≤ {ref['optimum_upper']:.4f})"
        cost_gap = ref["reference_expected_cost"] - ref["optimum_value"]
        lines.append(
            f"| {task} | {objective} | {layers} | {init} | {opt} | {len(group)} | {optimum} "
            f"| {_median([r['objective_value'] for r in group])} "
            f"| {_median(gaps)} [{min(gaps):.3g}, {max(gaps):.3g}] "
            f"| {_median([r[side] for r in group])} "
            f"| {statistics.fmean(r['mass_optimal'] for r in group):.2f} "
            f"({ref['reference_mass_optimal']:.2f}) "
            f"| {_median([r['expected_cost'] - r['optimum_value'] for r in group])} "
            f"({cost_gap:.3g}) |"
        )
    return lines


def runs_table(rows: list[dict]) -> list[str]:
    lines = [
        "| task | objective | layers | init | optimizer | seeds | success (mode = optimum) | "
        f"best of {RESTARTS} | success (test acc) | median evals to optimum | evals per run | "
        "median ‖∇‖ at init | mean mass on optimum | median E_q[C] − C* |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (task, objective, layers, init, opt), group in _groups(rows):
        n = len(group)
        ok = sum(r["mode_optimal"] for r in group)
        test = sum(r["evals_to_test"] is not None for r in group)
        reach = [r["evals_to_optimum"] for r in group if r["evals_to_optimum"] is not None]
        best = f"{best_of_k(group, RESTARTS):.2f}" if n >= RESTARTS else "—"
        lines.append(
            f"| {task} | {objective} | {layers} | {init} | {opt} | {n} | {ok}/{n} | {best} "
            f"| {test}/{n} "
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
    parser.add_argument("what", choices=("runs", "gradients", "table", "optima"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/trainability"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--n", type=int, nargs="*", default=[6, 10, 14, 18])
    parser.add_argument("--layers", type=int, nargs="*", default=[1, 2, 3, 4, 5, 6])
    parser.add_argument("--inits", type=int, default=50)
    parser.add_argument("--init", nargs="*", default=list(INITS), help="runs: these inits")
    parser.add_argument("--budget", type=int, nargs=2, default=None, help="Adam, L-BFGS steps")
    parser.add_argument("--objective", nargs="*", default=["mle"], choices=OBJECTIVES)
    parser.add_argument("--optimizer", nargs="*", default=list(OPTIMIZERS), choices=OPTIMIZERS)
    args = parser.parse_args()
    if args.what == "runs":
        budget = tuple(args.budget) if args.budget else None
        run_all(
            args.out,
            args.seeds,
            args.workers,
            args.tasks,
            tuple(args.init),
            budget,
            tuple(args.objective),
            tuple(args.optimizer),
        )
    elif args.what == "optima":
        optima(args.out, args.tasks, args.objective)
    elif args.what == "gradients":
        gradients_all(args.out, args.n, args.layers, args.inits)
    else:
        if (args.out / "runs.jsonl").exists():
            rows = _rows(args.out / "runs.jsonl")
            print("\n".join(brief_table(rows)))
            print()
            print("\n".join(runs_table(rows)))
            if any(_objective(r) != "mle" for r in rows):
                print()
                print("\n".join(gap_table(rows)))
        if (args.out / "gradients.jsonl").exists():
            print()
            print("\n".join(gradients_table(_rows(args.out / "gradients.jsonl"))))


if __name__ == "__main__":
    main()
