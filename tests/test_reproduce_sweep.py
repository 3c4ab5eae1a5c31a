"""The reproduction sweep: QHN objectives and classical baselines on the same tasks and seeds,
the searches at a budget of one enumeration (2^n network-loss evaluations)."""

from __future__ import annotations

from collections import Counter

import pytest

from qhn.data import get_task
from qhn.experiments.reproduce import reproduce_sweep
from qhn.experiments.sweep import expand, loads_sweep


@pytest.mark.parametrize("quick", [True, False])
def test_every_point_is_a_valid_run_and_baselines_share_the_qhn_seeds(quick, tmp_path):
    text = reproduce_sweep(quick=quick, cost_vector=None)
    points = expand(loads_sweep(text))
    baselines = [p for p in points if p.config.method is not None]
    assert baselines, "the second edition runs classical baselines"
    for task in {p.config.task for p in baselines}:
        ours = [p.config for p in points if p.config.task == task and p.config.method is None]
        theirs = [p.config for p in baselines if p.config.task == task]
        # Paired by seed with the exact QHN runs (the sampled ones where a task has no exact
        # runs): same seeds, data, temperature and steps.
        exact = [c for c in ours if c.shots is None] or ours
        assert {c.train.seed for c in theirs} == {c.train.seed for c in exact}
        assert {c.temperature for c in theirs} == {c.temperature for c in exact}
        assert {c.train.steps for c in theirs} == {c.train.steps for c in exact}
        # One run per method and seed (a baseline has no layers).
        per_method = Counter(c.method for c in theirs)
        assert len(set(per_method.values())) == 1
        n_bits = get_task(task).n_bits
        assert not any(c.method in ("anneal", "random") for c in theirs) or n_bits <= 22
        for c in theirs:
            if c.method in ("anneal", "random"):
                assert c.baseline["budget"] == 2**n_bits


def test_cost_vector_runs_only_the_searches(tmp_path):
    costs = tmp_path / "costs.txt"
    costs.write_text("\n".join(str(0.5 + 0.01 * (i % 7)) for i in range(2**17)) + "\n")
    points = expand(loads_sweep(reproduce_sweep(cost_vector=costs)))
    methods = {p.config.method for p in points if p.config.task == "cost-vector"}
    assert methods == {None, "anneal", "random", "exhaustive"}


def test_the_at_scale_rows_run_the_shipped_digits10_recipe():
    """The full edition's digits10 ELBO runs are ``examples/digits10.toml`` with other seeds
    and layers, and every arm of the group shares the settings the comparisons pair on."""
    from pathlib import Path

    import tomllib

    example = tomllib.loads(Path("examples/digits10.toml").read_text())
    points = expand(loads_sweep(reproduce_sweep(cost_vector=None)))
    digits10 = [p.config for p in points if p.config.task == "digits10"]
    assert {c.train.seed for c in digits10} == {0, 1, 2}
    ours = [c for c in digits10 if c.method is None and c.objective == "elbo"]
    assert {c.layers for c in ours} == {0, 1}
    for c in ours:
        for key, value in example.items():
            if key in ("train", "layers"):
                continue
            assert getattr(c, key) == value, key
        assert c.train.steps == example["train"]["steps"]
        assert c.train.lr == example["train"]["lr"]
    assert {c.method for c in digits10} == {None, "ste", "bayesbinn"}
    shared = {(c.shots, c.blocks, c.batch_size, c.estimator, c.train.steps) for c in digits10}
    assert len(shared) == 1
    quick = expand(loads_sweep(reproduce_sweep(quick=True)))
    assert not any(p.config.task == "digits10" for p in quick)
