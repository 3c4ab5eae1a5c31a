"""Sweeps: grid expansion, stable ids, includes/excludes/groups, validation before running,
resumption after crashes (simulated and ``kill -9``), failures, and the local process pool."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from qhn.errors import ConfigError
from qhn.experiments import runner
from qhn.experiments.config import RunConfig, config_hash, loads_config
from qhn.experiments.executors import run_sweep
from qhn.experiments.overrides import apply_overrides
from qhn.experiments.results import collect
from qhn.experiments.sweep import expand, load_sweep, loads_sweep, point_id
from qhn.train import read_history

BASE = """
[base]
task = "teacher-tiny"
[base.task_options]
n_train = 60
n_test = 60
[base.train]
steps = 12
"""

TIMING = ("train_seconds", "wall_seconds")


def ids(text: str) -> list[str]:
    return [p.id for p in expand(loads_sweep(text))]


def settings(text: str) -> list[tuple]:
    return [
        (p.config.objective, p.config.layers, p.config.train.seed, p.config.shots)
        for p in expand(loads_sweep(text))
    ]


# --- expansion and ids -----------------------------------------------------------------------


def test_grid_is_the_product_in_file_order_last_key_fastest():
    text = BASE + '[grid]\nobjective = ["mle", "elbo"]\nlayers = [0, 1, 2]\n'
    assert settings(text) == [
        (objective, layers, 0, None) for objective in ("mle", "elbo") for layers in (0, 1, 2)
    ]


def test_ids_are_stable_and_follow_the_documented_form():
    text = "seeds = 2\n" + BASE + '[grid]\nobjective = ["mle", "selbo"]\nlayers = [0, 1]\n'
    first, second = expand(loads_sweep(text)), expand(loads_sweep(text))
    assert [p.id for p in first] == [p.id for p in second]
    assert len({p.id for p in first}) == 8
    for point in first:
        c = point.config
        expected = f"teacher-tiny-{c.objective}-L{c.layers}-s{c.train.seed}-"
        assert point.id == expected + config_hash(c)[:8]
        assert re.fullmatch(r"[A-Za-z0-9._+-]+", point.id)


def test_id_depends_only_on_the_points_configuration():
    point = expand(loads_sweep(BASE + '[grid]\nobjective = ["elbo"]\nlayers = [3]\n'))[0]
    written_out = loads_config(
        'task = "teacher-tiny"\nobjective = "elbo"\nlayers = 3\n'
        "[task_options]\nn_train = 60\nn_test = 60\n[train]\nsteps = 12\n"
    )
    assert point.config == written_out
    assert point.id == point_id(written_out)


def test_adding_a_grid_value_keeps_the_other_ids_and_their_order():
    before = ids("seeds = 2\n" + BASE + "[grid]\nlayers = [0, 1]\nbeta = [1.0]\n")
    after = ids("seeds = 2\n" + BASE + "[grid]\nlayers = [0, 1, 2]\nbeta = [1.0, 0.5]\n")
    assert set(before) < set(after)
    assert [i for i in after if i in before] == before


def test_unsafe_characters_in_task_names_are_replaced():
    config = RunConfig(task="teacher-tiny")
    weird = config.__class__(**{**config.__dict__, "task": "a b/c"})
    assert re.fullmatch(r"a_b_c-elbo-L2-s0-[0-9a-f]{8}", point_id(weird))


def test_seeds_shorthand_equals_a_seed_grid():
    shorthand = "seeds = 3\n" + BASE + "[grid]\nlayers = [0, 1]\n"
    explicit = BASE + "[grid]\nlayers = [0, 1]\ntrain.seed = [0, 1, 2]\n"
    assert ids(shorthand) == ids(explicit)
    assert ids("seeds = [4, 7]\n" + BASE + "[grid]\nlayers = [1]\n") == ids(
        BASE + "[grid]\nlayers = [1]\nseed = [4, 7]\n"
    )


def test_base_keys_and_dotted_grid_keys_reach_the_configs():
    text = BASE + "[grid]\ntask_options.n_train = [30, 40]\nlr = [0.1]\n"
    points = expand(loads_sweep(text))
    assert [p.config.task_options["n_train"] for p in points] == [30, 40]
    assert all(p.config.task_options["n_test"] == 60 for p in points)
    assert all(p.config.train.lr == 0.1 and p.config.train.steps == 12 for p in points)
    assert points[0].overrides == ("task_options.n_train=30", "train.lr=0.1")


def test_include_adds_points_for_each_grid_seed_unless_it_sets_one():
    text = (
        "seeds = 2\n"
        + BASE
        + '[grid]\nobjective = ["mle"]\n'
        + '[[include]]\nobjective = "selbo"\nbackend = "sampled"\nshots = 16\n'
        + '[[include]]\nobjective = "elbo"\ntrain.seed = 9\n'
    )
    assert settings(text) == [
        ("mle", 2, 0, None),
        ("mle", 2, 1, None),
        ("selbo", 2, 0, 16),
        ("selbo", 2, 1, 16),
        ("elbo", 2, 9, None),
    ]


def test_exclude_drops_matching_grid_points_before_validation():
    text = (
        BASE
        + '[grid]\nobjective = ["mle", "elbo"]\nbackend = ["statevector", "sampled"]\n'
        + "shots = [16]\n"
        + '[[exclude]]\nobjective = "elbo"\nbackend = "sampled"\n'
        + '[[exclude]]\nbackend = "statevector"\nshots = [16, 32]\n'
    )
    # elbo + sampled would be refused by RunConfig; statevector with shots is dropped too
    points = expand(loads_sweep(text))
    assert [(p.config.objective, p.config.backend) for p in points] == [("mle", "sampled")]


def test_exclude_matches_defaults_and_none_and_spares_includes():
    text = (
        BASE
        + '[grid]\nobjective = ["mle", "elbo"]\nlayers = [0, 2]\n'
        + '[[exclude]]\nlayers = 2\nshots = "none"\nobjective = ["elbo"]\n'
        + '[[include]]\nobjective = "elbo"\nlayers = 2\n'
    )
    assert settings(text) == [
        ("mle", 0, 0, None),
        ("mle", 2, 0, None),
        ("elbo", 0, 0, None),
        ("elbo", 2, 0, None),  # the include, although the pattern matches it
    ]


def test_equal_points_run_once():
    text = BASE + "[grid]\nlayers = [1, 1, 2]\n[[include]]\nlayers = 2\n"
    assert settings(text) == [("elbo", 1, 0, None), ("elbo", 2, 0, None)]


def test_groups_share_the_top_level_and_keep_their_own_settings():
    text = (
        "seeds = 2\n"
        + BASE
        + "[grid]\nlayers = [0, 1]\n"
        + '[[exclude]]\nlayers = 0\nobjective = "selbo"\n'
        + '[[group]]\nname = "exact"\n[group.grid]\nobjective = ["mle", "selbo"]\n'
        + '[[group]]\nname = "samples"\nseeds = 1\n'
        + '[group.base]\nbackend = "sampled"\nshots = 32\n"train.steps" = 5\n'
        + '[group.grid]\nobjective = ["selbo"]\nlayers = [2]\n'
        + '[[group.include]]\nobjective = "mle"\nlayers = 1\n'
    )
    points = expand(loads_sweep(text))
    assert [p.group for p in points] == ["exact"] * 6 + ["samples"] * 2
    assert [(p.config.objective, p.config.layers, p.config.train.seed) for p in points[:6]] == [
        ("mle", 0, 0),
        ("mle", 0, 1),
        ("mle", 1, 0),
        ("mle", 1, 1),
        ("selbo", 1, 0),
        ("selbo", 1, 1),
    ]
    sampled = points[6:]
    assert [(p.config.objective, p.config.layers) for p in sampled] == [("selbo", 2), ("mle", 1)]
    assert all(p.config.shots == 32 and p.config.train.steps == 5 for p in sampled)
    assert all(p.config.train.steps == 12 and p.config.shots is None for p in points[:6])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + "[grid]\nlayers = 2\n", "non-empty array"),
        (BASE + "[grid]\nlayers = []\n", "non-empty array"),
        ("seeds = 2\n" + BASE + "[grid]\ntrain.seed = [0, 1]\n", "both set the seeds"),
        (BASE + "[grd]\nlayers = [1]\n", "unknown key 'grd'"),
        (BASE + "[[exclude]]\nlayer = 1\n", "unknown key 'layer'"),
        ("[grid]\nlayers = [1]\n", "task is required"),
        (BASE + "[[group]]\nname = 'a'\n[[group]]\nname = 'a'\n", "used twice"),
        (
            BASE + "[[include]]\nlayers = 1\n[[group]]\nname = 'a'\n",
            "cannot be combined with [[group]]",
        ),
        ("seeds = 0\n" + BASE + "", "seeds must be an integer >= 1"),
        ("[base\n", "not valid TOML"),
    ],
)
def test_malformed_sweep_files_are_refused(text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        expand(loads_sweep(text))


def test_an_invalid_point_is_named_and_nothing_runs(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(runner, "run", lambda *a, **k: calls.append(a))
    spec = tmp_path / "sweep.toml"
    spec.write_text(BASE + '[grid]\nobjective = ["mle", "elbow"]\nlayers = [0, 1]\n')
    with pytest.raises(ConfigError) as error:
        run_sweep(spec, tmp_path / "out")
    message = str(error.value)
    assert 'objective="elbow", layers=0' in message
    assert "choose one of: mle, elbo, selbo" in message
    assert calls == []
    assert not (tmp_path / "out").exists()


def test_a_task_that_cannot_be_built_is_refused_before_running(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(runner, "run", lambda *a, **k: calls.append(a))
    missing = tmp_path / "missing.npy"
    text = (
        f'[base]\ntask = "cost-vector"\n[base.task_options]\npath = "{missing}"\n'
        "[grid]\nlayers = [0, 1]\n"
    )
    with pytest.raises(ConfigError, match=r"point cost-vector-elbo-L0-s0-"):
        run_sweep(loads_sweep(text), tmp_path / "out")
    assert calls == []


# --- running, resuming, failures -------------------------------------------------------------

TINY = "seeds = 2\n" + BASE + '[grid]\nobjective = ["mle", "elbo"]\nlayers = [1]\n'


class Crash(BaseException):
    """Stands in for the process dying: not an Exception, so nothing records it."""


def counting_runner(monkeypatch, *, crash_after: int | None = None, crash_at_step: int = 5):
    """Wrap the real runner: record (id, resume) per call; the call after ``crash_after``
    completed calls dies in the middle of training."""
    real = runner.run
    calls: list[tuple[str, bool]] = []

    def wrapped(config, out_dir, *, resume=False, **kwargs):
        calls.append((Path(out_dir).name, resume))
        if crash_after is not None and len(calls) > crash_after:

            def die(step, total, record):
                if step == crash_at_step:
                    raise Crash

            kwargs["progress"] = die
        return real(config, out_dir, resume=resume, **kwargs)

    monkeypatch.setattr(runner, "run", wrapped)
    return calls


def complete_ids(out: Path) -> set[str]:
    return {p.parent.name for p in (out / "runs").glob("*/summary.json")}


def test_resume_after_a_crash_runs_exactly_the_missing_points(tmp_path, monkeypatch):
    spec = loads_sweep(TINY.replace("steps = 12", "steps = 12\ncheckpoint_every = 4"))
    points = expand(spec)
    out = tmp_path / "sweep"
    calls = counting_runner(monkeypatch, crash_after=2)
    with pytest.raises(Crash):
        run_sweep(spec, out, plots=False)
    done_before = complete_ids(out)
    assert done_before == {points[0].id, points[1].id}
    crashed = points[2].id
    assert (out / "runs" / crashed / "checkpoint.pt").exists()  # saved at step 4
    assert not (out / "runs" / crashed / "summary.json").exists()

    monkeypatch.undo()
    calls = counting_runner(monkeypatch)
    result = run_sweep(spec, out, plots=False)
    assert calls == [(crashed, True), (points[3].id, False)]
    assert result.skipped == [points[0].id, points[1].id]
    assert result.resumed == [crashed]
    assert result.ok
    assert complete_ids(out) == {p.id for p in points}
    for point in points:
        steps = [r["step"] for r in read_history(out / "runs" / point.id / "history.jsonl")]
        assert steps == list(range(1, 13))

    calls.clear()
    again = run_sweep(spec, out, plots=False)
    assert calls == []
    assert again.skipped == [p.id for p in points]
    table = collect(out)
    assert sorted(row["id"] for row in table.rows) == sorted(p.id for p in points)
    lines = (out / "results.csv").read_text().splitlines()
    assert len(lines) == 1 + len(points)


def test_a_checkpoint_without_summary_resumes_and_gives_the_same_summary(tmp_path, monkeypatch):
    spec = loads_sweep(BASE + "[grid]\nlayers = [1]\n")
    out = tmp_path / "sweep"
    run_sweep(spec, out, plots=False)
    (point,) = expand(spec)
    summary_path = out / "runs" / point.id / "summary.json"
    first = json.loads(summary_path.read_text())
    summary_path.unlink()
    calls = counting_runner(monkeypatch)
    result = run_sweep(spec, out, plots=False)
    assert calls == [(point.id, True)]
    assert result.resumed == [point.id]
    second = json.loads(summary_path.read_text())
    assert {k: v for k, v in first.items() if k not in TIMING} == {
        k: v for k, v in second.items() if k not in TIMING
    }


def test_failures_are_recorded_and_do_not_stop_other_runs(tmp_path, monkeypatch):
    spec = loads_sweep(TINY)
    points = expand(spec)
    bad = points[1].id
    real = runner.run

    def flaky(config, out_dir, **kwargs):
        if Path(out_dir).name == bad:
            raise RuntimeError("simulated failure")
        return real(config, out_dir, **kwargs)

    monkeypatch.setattr(runner, "run", flaky)
    seen = []
    out = tmp_path / "sweep"
    result = run_sweep(spec, out, plots=False, progress=seen.append)
    assert list(result.failed) == [bad]
    assert "simulated failure" in result.failed[bad]
    assert "RuntimeError: simulated failure" in (out / "runs" / bad / "error.txt").read_text()
    assert complete_ids(out) == {p.id for p in points} - {bad}
    assert (seen[0].done, seen[-1].completed, seen[-1].failed) == (0, 3, 1)
    assert not result.ok

    monkeypatch.setattr(runner, "run", real)
    retry = run_sweep(spec, out, plots=False)
    assert retry.completed == [bad] and retry.ok
    assert not (out / "runs" / bad / "error.txt").exists()
    assert (out / "sweep.toml").read_text() == TINY


def test_process_pool_gives_the_same_summaries_as_in_process(tmp_path):
    spec = loads_sweep(BASE + '[grid]\nobjective = ["mle", "selbo"]\nlayers = [1]\n')
    serial = run_sweep(spec, tmp_path / "serial", workers=1, plots=False)
    pooled = run_sweep(spec, tmp_path / "pool", workers=2, plots=False)
    assert serial.ok and pooled.ok
    assert sorted(pooled.completed) == sorted(serial.completed)
    for run_id in serial.completed:
        a = json.loads((tmp_path / "serial" / "runs" / run_id / "summary.json").read_text())
        b = json.loads((tmp_path / "pool" / "runs" / run_id / "summary.json").read_text())
        assert {k: v for k, v in a.items() if k not in TIMING} == {
            k: v for k, v in b.items() if k not in TIMING
        }


def test_kill_9_then_restart_completes_every_run_once(tmp_path, monkeypatch):
    text = "seeds = 2\n" + BASE.replace("steps = 12", "steps = 150\ncheckpoint_every = 25")
    text += '[grid]\nobjective = ["mle", "elbo"]\nlayers = [2]\n'
    spec_path = tmp_path / "sweep.toml"
    spec_path.write_text(text)
    out = tmp_path / "sweep"
    script = textwrap.dedent(
        f"""
        from qhn.experiments.executors import run_sweep
        run_sweep({str(spec_path)!r}, {str(out)!r}, plots=False)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)

    def mid_run() -> list[str]:
        """Runs with a checkpoint and no summary, once at least one run is complete."""
        if not complete_ids(out):
            return []
        return [
            p.parent.name
            for p in (out / "runs").glob("*/checkpoint.pt")
            if not (p.parent / "summary.json").exists()
        ]

    try:
        deadline = time.monotonic() + 120
        while not mid_run() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    before = complete_ids(out)
    interrupted = mid_run()
    points = expand(load_sweep(spec_path))
    assert before and interrupted, "the sweep was not caught in the middle of a run"
    calls = counting_runner(monkeypatch)
    result = run_sweep(spec_path, out, plots=False)
    missing = {p.id for p in points} - before
    assert sorted(run_id for run_id, _ in calls) == sorted(missing)
    assert {run_id for run_id, resumed in calls if resumed} == set(interrupted)
    assert result.ok and complete_ids(out) == {p.id for p in points}
    for point in points:
        steps = [r["step"] for r in read_history(out / "runs" / point.id / "history.jsonl")]
        assert steps == list(range(1, 151))
    table = collect(out)
    assert len(table.rows) == len({row["id"] for row in table.rows}) == len(points)


def test_config_overrides_match_apply_overrides():
    (point,) = expand(loads_sweep(BASE + '[grid]\nobjective = ["selbo"]\nlam = [2.5]\n'))
    base = apply_overrides(
        RunConfig(task="teacher-tiny"),
        ["task_options.n_train=60", "task_options.n_test=60", "train.steps=12"],
    )
    assert point.config == apply_overrides(base, list(point.overrides))
