"""The training loop, its config, callbacks and resumable checkpoints.

Oracles: closed-form minimizers and gradients of small fake objectives that follow the
``Objective`` protocol, torch's own LR schedulers, and an uninterrupted run for resume tests.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass

import pytest
import torch

from qhn.errors import ConfigError
from qhn.train import (
    CHECKPOINT_FILE,
    EarlyStopping,
    HistoryWriter,
    TrainConfig,
    fit,
    is_stochastic,
    learning_rate,
    load_checkpoint,
    read_history,
)

# --- fakes following the hypernetwork / objective interface -----------------------------------


class Access(enum.Enum):
    PROBS = "probs"
    SAMPLES = "samples"


class FakeStats:
    """Counters with ``snapshot()`` only (no ``load``), the minimal interface."""

    def __init__(self) -> None:
        self.circuit_executions = 0
        self.shots = 0

    def snapshot(self) -> dict[str, int]:
        return {"circuit_executions": self.circuit_executions, "shots": self.shots}


class FakeHypernet(torch.nn.Module):
    def __init__(self, theta0) -> None:
        super().__init__()
        self.theta = torch.nn.Parameter(torch.as_tensor(theta0, dtype=torch.float64).clone())
        self.stats = FakeStats()


@dataclass
class FakeResult:
    loss: torch.Tensor
    metrics: dict[str, float]


class Quadratic:
    """Deterministic ``L(θ) = Σ_i w_i (θ_i − c_i)²``: minimizer ``c``, gradient ``2w(θ − c)``."""

    name = "quadratic"
    requires = Access.PROBS

    def __init__(self, target, weights=None) -> None:
        self.target = torch.as_tensor(target, dtype=torch.float64)
        self.weights = (
            torch.ones_like(self.target)
            if weights is None
            else torch.as_tensor(weights, dtype=torch.float64)
        )
        self.anneal = 1.0
        self.calls = 0
        self.seen_anneal: list[float] = []

    def __call__(self, model, *, generator):
        assert isinstance(generator, torch.Generator)
        self.calls += 1
        self.seen_anneal.append(self.anneal)
        model.stats.circuit_executions += 1
        loss = (self.weights * (model.theta - self.target) ** 2).sum()
        value = float(loss.detach())
        return FakeResult(loss, {"objective": -value, "data_term": -value, "expected_cost": value})


class NoisyQuadratic:
    """Stochastic: ``mean_k Σ_i (θ_i − c_i − ε_ki)²`` with ``ε ~ N(0, σ²)`` drawn from the
    generator, plus an anneal-weighted penalty, so every piece of state matters on resume."""

    name = "noisy"
    requires = Access.SAMPLES
    stochastic = True

    def __init__(self, target, shots: int = 8, sigma: float = 0.5) -> None:
        self.target = torch.as_tensor(target, dtype=torch.float64)
        self.shots = shots
        self.sigma = sigma
        self.anneal = 1.0
        self.calls = 0
        self.first_draw: torch.Tensor | None = None

    def __call__(self, model, *, generator):
        self.calls += 1
        noise = self.sigma * torch.randn(
            self.shots, self.target.numel(), generator=generator, dtype=torch.float64
        )
        if self.first_draw is None:
            self.first_draw = noise.clone()
        model.stats.circuit_executions += 1
        model.stats.shots += self.shots
        data = ((model.theta - self.target - noise) ** 2).sum(-1).mean()
        kl = (model.theta**2).sum()
        loss = data + 0.1 * self.anneal * kl
        metrics = {"objective": -float(loss.detach()), "data_term": -float(data.detach())}
        return FakeResult(loss, {**metrics, "kl": float(kl.detach())})


class Rosenbrock:
    """Deterministic ``(1 − x)² + 100 (y − x²)²``: minimizer ``(1, 1)``."""

    name = "rosenbrock"
    requires = Access.PROBS

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, model, *, generator):
        self.calls += 1
        x, y = model.theta[0], model.theta[1]
        loss = (1 - x) ** 2 + 100 * (y - x**2) ** 2
        return FakeResult(loss, {"objective": -float(loss.detach())})


class Scripted:
    """Loss values from a script (zero gradient): drives early stopping exactly."""

    name = "scripted"

    def __init__(self, values) -> None:
        self.values = list(values)
        self.calls = 0

    def __call__(self, model, *, generator):
        value = self.values[self.calls]
        self.calls += 1
        return FakeResult(model.theta.sum() * 0.0 + value, {"objective": -value})


class StopAt:
    def __init__(self, step: int, raise_error: bool = False) -> None:
        self.step, self.raise_error = step, raise_error

    def on_step(self, record, model) -> bool:
        if record["step"] == self.step:
            if self.raise_error:
                raise KeyboardInterrupt("simulated kill")
            return True
        return False


TARGET = [0.3, -1.2, 2.0, 0.7, -0.4]


def _without_elapsed(history):
    return [{k: v for k, v in r.items() if k != "elapsed"} for r in history]


# --- TrainConfig validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        ({"steps": 0}, ["train.steps", "0", ">= 1"]),
        ({"steps": 2.5}, ["train.steps", "2.5"]),
        ({"steps": True}, ["train.steps", "True"]),
        ({"lr": 0.0}, ["train.lr", "0.0", "> 0"]),
        ({"lr": float("nan")}, ["train.lr", "nan"]),
        ({"optimizer": "sgd"}, ["train.optimizer", "'sgd'", "adam, lbfgs"]),
        ({"optimizer": "adma"}, ["did you mean 'adam'"]),
        ({"schedule": "linear"}, ["train.schedule", "constant, cosine, step"]),
        ({"anneal_steps": -1}, ["train.anneal_steps", "-1"]),
        ({"seed": -3}, ["train.seed", "-3"]),
        ({"grad_clip": 0}, ["train.grad_clip", "> 0"]),
        ({"grad_clip": 1.0, "optimizer": "lbfgs"}, ["grad_clip", "lbfgs"]),
        ({"early_stop_patience": -1}, ["train.early_stop_patience"]),
        ({"early_stop_min_delta": -0.1}, ["train.early_stop_min_delta", "-0.1"]),
        ({"checkpoint_every": -2}, ["train.checkpoint_every", "-2"]),
        ({"lbfgs_max_iter": 0}, ["train.lbfgs_max_iter", "0"]),
    ],
)
def test_train_config_refuses_bad_values_naming_them(kwargs, fragments):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**kwargs)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_train_config_coerces_integer_floats_and_refuses_unknown_keys():
    config = TrainConfig(lr=1, early_stop_min_delta=0)
    assert isinstance(config.lr, float) and isinstance(config.early_stop_min_delta, float)
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match=r"unknown key 'stepz'.*did you mean 'steps'"):
        TrainConfig.from_dict({"stepz": 3})


# --- optimization -----------------------------------------------------------------------------


def test_adam_converges_to_the_minimizer_of_a_convex_objective():
    model = FakeHypernet(torch.zeros(5))
    objective = Quadratic(TARGET, weights=[1.0, 2.0, 0.5, 1.0, 3.0])
    result = fit(model, objective, TrainConfig(steps=600, lr=0.05, schedule="cosine"))
    assert result.stop_reason == "completed" and result.steps_done == 600
    assert torch.allclose(model.theta.detach(), objective.target, atol=1e-4)
    assert result.history[-1]["loss"] < 1e-7 < result.history[0]["loss"]


def test_records_describe_the_angles_before_each_update():
    theta0 = torch.tensor([1.0, 0.0, -1.0, 2.0, 0.5], dtype=torch.float64)
    weights = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0], dtype=torch.float64)
    model = FakeHypernet(theta0)
    objective = Quadratic(TARGET, weights)
    seen = []
    result = fit(model, objective, TrainConfig(steps=3), progress=lambda *a: seen.append(a))
    first = result.history[0]
    expected_loss = float((weights * (theta0 - objective.target) ** 2).sum())
    expected_grad = float((2 * weights * (theta0 - objective.target)).norm())
    assert first["step"] == 1
    assert first["loss"] == pytest.approx(expected_loss, rel=1e-14)
    assert first["grad_norm"] == pytest.approx(expected_grad, rel=1e-14)
    assert first["objective"] == -first["loss"] and first["expected_cost"] == first["loss"]
    assert first["lr"] == 0.05 and first["anneal"] == 1.0
    assert [r["circuit_executions"] for r in result.history] == [1, 2, 3]
    assert [r["shots"] for r in result.history] == [0, 0, 0]
    assert all(r["elapsed"] >= 0 for r in result.history)
    assert [s for s, _, _ in seen] == [1, 2, 3] and {t for _, t, _ in seen} == {3}
    assert seen[-1][2] is result.final


def test_lbfgs_converges_on_deterministic_objectives():
    # An ill-conditioned quadratic. L-BFGS stops once |∇L|_∞ <= 1e-6 or the loss changes by
    # < 1e-12, so L <= ~1e-12 and |θ_i − c_i| <= sqrt(L / w_i) <= 1e-6.
    model = FakeHypernet(torch.zeros(5))
    objective = Quadratic(TARGET, weights=[1.0, 10.0, 100.0, 3.0, 30.0])
    result = fit(model, objective, TrainConfig(steps=5, lr=1.0, optimizer="lbfgs"))
    assert result.final["loss"] < 1e-12
    assert torch.allclose(model.theta.detach(), objective.target, atol=1e-6, rtol=0)
    assert objective.calls > result.steps_done  # several evaluations per L-BFGS step

    # Rosenbrock from the classic start (−1.2, 1), whose minimizer is (1, 1).
    model = FakeHypernet([-1.2, 1.0])
    result = fit(model, Rosenbrock(), TrainConfig(steps=10, lr=1.0, optimizer="lbfgs"))
    assert result.history[0]["loss"] == pytest.approx(24.2)  # (1 + 1.2)² + 100 (1 − 1.44)²
    assert result.final["loss"] < 1e-12
    assert torch.allclose(model.theta.detach(), torch.ones(2, dtype=torch.float64), atol=1e-5)


@pytest.mark.parametrize(
    "make_objective",
    [
        lambda: NoisyQuadratic(TARGET),
        lambda: type("SamplesOnly", (Scripted,), {"requires": Access.SAMPLES})([0.0]),
        lambda: type("WithShots", (Scripted,), {"shots": 100})([0.0]),
    ],
)
def test_lbfgs_is_refused_for_a_stochastic_objective_before_any_compute(make_objective):
    objective = make_objective()
    assert is_stochastic(objective)
    with pytest.raises(ConfigError, match=r"lbfgs.*stochastic"):
        fit(FakeHypernet(torch.zeros(5)), objective, TrainConfig(optimizer="lbfgs", lr=1.0))
    assert objective.calls == 0
    assert not is_stochastic(Quadratic(TARGET))


def test_grad_clip_bounds_the_applied_gradient():
    norms = []

    class Watch:
        def on_step(self, record, model):
            norms.append((record["grad_norm"], float(model.theta.grad.norm())))
            return False

    fit(
        FakeHypernet(torch.zeros(5)),
        Quadratic(TARGET),
        TrainConfig(steps=4, grad_clip=0.1),
        callbacks=[Watch()],
    )
    for raw, applied in norms:
        assert raw > 0.1
        assert applied == pytest.approx(0.1, rel=1e-5)


def test_the_generator_is_seeded_from_the_config():
    objective = NoisyQuadratic(TARGET)
    fit(FakeHypernet(torch.zeros(5)), objective, TrainConfig(steps=1, seed=1234))
    expected = 0.5 * torch.randn(
        8, 5, generator=torch.Generator().manual_seed(1234), dtype=torch.float64
    )
    assert torch.equal(objective.first_draw, expected)


def test_non_finite_loss_stops_without_applying_the_update():
    model = FakeHypernet(torch.zeros(5))
    objective = Scripted([3.0, 2.0, float("nan"), 1.0])
    result = fit(model, objective, TrainConfig(steps=4))
    assert result.stop_reason == "non_finite" and result.steps_done == 2
    assert len(result.history) == 2
    assert bool(torch.isfinite(model.theta).all())


# --- schedules and annealing ------------------------------------------------------------------


def _lrs(schedule: str, steps: int, lr: float = 0.2) -> list[float]:
    result = fit(
        FakeHypernet(torch.zeros(2)),
        Scripted([1.0] * steps),
        TrainConfig(steps=steps, lr=lr, schedule=schedule),
    )
    return [r["lr"] for r in result.history]


def _torch_lrs(make_scheduler, steps: int, lr: float = 0.2) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make_scheduler(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return out


@pytest.mark.parametrize("steps", [1, 2, 7, 30])
def test_schedules_match_torch_schedulers_and_the_closed_form(steps):
    cosine = _lrs("cosine", steps)
    closed = [0.2 * 0.5 * (1 + math.cos(math.pi * t / steps)) for t in range(steps)]
    assert cosine == pytest.approx(closed, rel=1e-15)
    torch_cos = _torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, steps), steps)
    assert cosine == pytest.approx(torch_cos, rel=1e-12, abs=1e-15)

    step_size = max(1, steps // 3)
    torch_step = _torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size, 0.5), steps)
    assert _lrs("step", steps) == pytest.approx(torch_step, rel=1e-15)
    assert _lrs("constant", steps) == [0.2] * steps


def test_learning_rate_step_schedule_halves_every_third():
    config = TrainConfig(steps=9, lr=1.0, schedule="step")
    assert [learning_rate(config, t) for t in range(9)] == [
        1,
        1,
        1,
        0.5,
        0.5,
        0.5,
        0.25,
        0.25,
        0.25,
    ]


def test_annealing_warms_the_objective_up_linearly():
    objective = Quadratic(TARGET)
    objective.anneal = 0.123
    result = fit(FakeHypernet(torch.zeros(5)), objective, TrainConfig(steps=8, anneal_steps=4))
    expected = [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0]
    assert objective.seen_anneal == expected
    assert [r["anneal"] for r in result.history] == expected

    objective = Quadratic(TARGET)
    objective.anneal = 0.5
    fit(FakeHypernet(torch.zeros(5)), objective, TrainConfig(steps=2))
    assert objective.seen_anneal == [1.0, 1.0]


def test_annealing_needs_an_objective_with_an_anneal_attribute():
    with pytest.raises(ConfigError, match="anneal"):
        fit(FakeHypernet(torch.zeros(2)), Rosenbrock(), TrainConfig(anneal_steps=3))


# --- early stopping ---------------------------------------------------------------------------


def test_early_stopping_stops_after_patience_steps_without_improvement():
    # best: 5 (step 1) -> 4 (step 2); 4.5, 3.9995 (not below 4 - 0.001) and 4.2 do not improve.
    values = [5.0, 4.0, 4.5, 3.9995, 4.2, 1.0, 1.0]
    objective = Scripted(values)
    config = TrainConfig(steps=7, early_stop_patience=3, early_stop_min_delta=0.001)
    result = fit(FakeHypernet(torch.zeros(2)), objective, config)
    assert result.stop_reason == "early_stopping" and result.stopped_early
    assert result.steps_done == 5 and objective.calls == 5

    never = fit(
        FakeHypernet(torch.zeros(2)),
        Scripted([1.0] * 10),
        TrainConfig(steps=10, early_stop_patience=2),
    )
    assert never.steps_done == 3


def test_early_stopping_callback_in_max_mode():
    stopper = EarlyStopping(patience=2, metric="objective", mode="max")
    values = [1.0, 2.0, 1.5, 2.0, 3.0, 2.9, 2.8]
    stops = [stopper.on_step({"step": i + 1, "objective": v}, None) for i, v in enumerate(values)]
    assert stops == [False, False, False, True, False, False, True]
    assert stopper.best == 3.0 and stopper.best_step == 5
    with pytest.raises(ConfigError, match="'missing'"):
        EarlyStopping(1, metric="missing").on_step({"loss": 1.0}, None)


# --- history and checkpoints ------------------------------------------------------------------


def test_history_writer_writes_one_line_per_step(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text("stale line from an earlier run\n")
    result = fit(
        FakeHypernet(torch.zeros(5)),
        NoisyQuadratic(TARGET),
        TrainConfig(steps=12),
        callbacks=[HistoryWriter(path)],
    )
    lines = path.read_text().splitlines()
    assert len(lines) == 12
    assert [json.loads(line) for line in lines] == result.history
    assert read_history(path) == result.history


RESUME_CONFIG = dict(steps=60, lr=0.05, schedule="cosine", seed=7, anneal_steps=20, grad_clip=5.0)


def _reference_run():
    model = FakeHypernet(torch.linspace(-1, 1, 5))
    result = fit(model, NoisyQuadratic(TARGET), TrainConfig(**RESUME_CONFIG))
    return model, result


@pytest.mark.parametrize("raise_error", [False, True])
def test_resume_after_interruption_is_bit_identical(tmp_path, raise_error):
    reference, expected = _reference_run()
    config = TrainConfig(**RESUME_CONFIG, checkpoint_every=10)
    history_path = tmp_path / "history.jsonl"

    model = FakeHypernet(torch.linspace(-1, 1, 5))
    stopper = StopAt(37, raise_error=raise_error)
    if raise_error:
        with pytest.raises(KeyboardInterrupt):
            fit(
                model,
                NoisyQuadratic(TARGET),
                config,
                checkpoint_dir=tmp_path,
                callbacks=[HistoryWriter(history_path), stopper],
            )
        assert load_checkpoint(tmp_path)["step"] == 30
    else:
        stopped = fit(
            model,
            NoisyQuadratic(TARGET),
            config,
            checkpoint_dir=tmp_path,
            callbacks=[HistoryWriter(history_path), stopper],
        )
        assert stopped.stop_reason == "callback" and stopped.steps_done == 37
        assert load_checkpoint(tmp_path)["step"] == 37
    assert len(history_path.read_text().splitlines()) == 37

    fresh = FakeHypernet(torch.zeros(5))  # different angles: the checkpoint must overwrite them
    resumed = fit(
        fresh,
        NoisyQuadratic(TARGET),
        config,
        checkpoint_dir=tmp_path,
        resume=True,
        callbacks=[HistoryWriter(history_path)],
    )
    assert torch.equal(fresh.theta.detach(), reference.theta.detach())
    assert resumed.steps_done == 60 and resumed.stop_reason == "completed"
    assert _without_elapsed(resumed.history) == _without_elapsed(expected.history)
    assert resumed.final["circuit_executions"] == expected.final["circuit_executions"] == 60
    assert resumed.final["shots"] == 60 * 8

    lines = [json.loads(line) for line in history_path.read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(1, 61))
    assert _without_elapsed(lines) == _without_elapsed(expected.history)


def test_lbfgs_resume_is_bit_identical(tmp_path):
    config = TrainConfig(steps=6, lr=1.0, optimizer="lbfgs", lbfgs_max_iter=5)
    reference = FakeHypernet([-1.2, 1.0])
    fit(reference, Rosenbrock(), config)

    fit(
        FakeHypernet([-1.2, 1.0]),
        Rosenbrock(),
        config,
        checkpoint_dir=tmp_path,
        callbacks=[StopAt(3)],
    )
    fresh = FakeHypernet([0.0, 0.0])
    fit(fresh, Rosenbrock(), config, checkpoint_dir=tmp_path, resume=True)
    assert torch.equal(fresh.theta.detach(), reference.theta.detach())


def test_resuming_a_finished_run_computes_nothing(tmp_path):
    config = TrainConfig(steps=5)
    first = fit(FakeHypernet(torch.zeros(5)), Quadratic(TARGET), config, checkpoint_dir=tmp_path)
    assert (tmp_path / CHECKPOINT_FILE).exists()  # written at the end even with checkpoint_every=0
    objective = Quadratic(TARGET)
    model = FakeHypernet(torch.ones(5))
    again = fit(model, objective, config, checkpoint_dir=tmp_path, resume=True)
    assert objective.calls == 0
    assert again.history == first.history and again.steps_done == 5

    stopped_dir = tmp_path / "early"
    early = TrainConfig(steps=10, early_stop_patience=1)
    fit(FakeHypernet(torch.zeros(2)), Scripted([1.0] * 10), early, checkpoint_dir=stopped_dir)
    objective = Scripted([1.0] * 10)
    result = fit(
        FakeHypernet(torch.zeros(2)), objective, early, checkpoint_dir=stopped_dir, resume=True
    )
    assert objective.calls == 0 and result.stop_reason == "early_stopping"


def test_resume_refuses_a_changed_config_and_starts_fresh_without_checkpoint(tmp_path):
    fit(
        FakeHypernet(torch.zeros(5)),
        Quadratic(TARGET),
        TrainConfig(steps=5, schedule="cosine"),
        checkpoint_dir=tmp_path,
    )
    with pytest.raises(ConfigError, match=r"lr: 0\.05 -> 0\.1"):
        fit(
            FakeHypernet(torch.zeros(5)),
            Quadratic(TARGET),
            TrainConfig(steps=5, schedule="cosine", lr=0.1),
            checkpoint_dir=tmp_path,
            resume=True,
        )
    with pytest.raises(ConfigError, match="checkpoint_dir"):
        fit(FakeHypernet(torch.zeros(5)), Quadratic(TARGET), TrainConfig(steps=5), resume=True)

    objective = Quadratic(TARGET)
    result = fit(
        FakeHypernet(torch.zeros(5)),
        objective,
        TrainConfig(steps=3),
        checkpoint_dir=tmp_path / "empty",
        resume=True,
    )
    assert objective.calls == 3 and result.steps_done == 3


def test_a_constant_schedule_run_can_be_extended(tmp_path):
    reference = FakeHypernet(torch.zeros(5))
    fit(reference, NoisyQuadratic(TARGET), TrainConfig(steps=20))
    model = FakeHypernet(torch.zeros(5))
    fit(model, NoisyQuadratic(TARGET), TrainConfig(steps=12), checkpoint_dir=tmp_path)
    fit(model, NoisyQuadratic(TARGET), TrainConfig(steps=20), checkpoint_dir=tmp_path, resume=True)
    assert torch.equal(model.theta.detach(), reference.theta.detach())


# --- with the real hypernetwork and objectives ------------------------------------------------


def _real_setup(n_bits: int, seed: int = 0):
    from qhn.inference.data_term import DataTerm
    from qhn.inference.priors import BernoulliPrior

    cost = torch.rand(2**n_bits, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return DataTerm(n_bits, n_examples=3, cost_vector=cost), BernoulliPrior.uniform(n_bits)


def _hypernet(n_bits: int, layers: int, *, sampled: bool, seed: int = 1):
    from qhn.backends import SampleOnly, StatevectorBackend
    from qhn.circuits import hardware_efficient
    from qhn.hypernetwork import QuantumHypernetwork

    backend = SampleOnly(StatevectorBackend()) if sampled else StatevectorBackend()
    generator = torch.Generator().manual_seed(seed)
    return QuantumHypernetwork(hardware_efficient(n_bits, layers), backend, generator=generator)


def test_lbfgs_on_the_exact_elbo_reaches_the_log_evidence():
    # Gibbs variational principle: max_q E_q[ℓ] − KL(q‖p) = log Σ_s p(s) e^{ℓ(s)}, attained at
    # q ∝ p·e^ℓ, which two layers of RY + CZ can represent on two qubits.
    from qhn.inference.elbo import ELBO

    data_term, prior = _real_setup(2)
    log_evidence = float(torch.logsumexp(data_term.vector - 2 * math.log(2), 0))
    model = _hypernet(2, 2, sampled=False)
    result = fit(model, ELBO(data_term, prior), TrainConfig(steps=20, lr=1.0, optimizer="lbfgs"))
    assert result.final["objective"] <= log_evidence + 1e-12
    assert result.final["objective"] == pytest.approx(log_evidence, abs=1e-9)
    assert result.final["circuit_executions"] == model.stats.circuit_executions > 20


def test_sample_based_selbo_resumes_bit_identically(tmp_path):
    from qhn.inference.selbo import SELBO

    data_term, prior = _real_setup(3)
    config = TrainConfig(steps=12, schedule="cosine", checkpoint_every=3, seed=5, anneal_steps=4)
    reference = _hypernet(3, 1, sampled=True)
    expected = fit(reference, SELBO(data_term, prior, shots=64), config)

    fit(
        _hypernet(3, 1, sampled=True),
        SELBO(data_term, prior, shots=64),
        config,
        checkpoint_dir=tmp_path,
        callbacks=[StopAt(7)],
    )
    fresh = _hypernet(3, 1, sampled=True, seed=9)
    resumed = fit(
        fresh, SELBO(data_term, prior, shots=64), config, checkpoint_dir=tmp_path, resume=True
    )
    assert torch.equal(fresh.theta.detach(), reference.theta.detach())
    assert _without_elapsed(resumed.history) == _without_elapsed(expected.history)
    assert resumed.final["shots"] == expected.final["shots"] > 0


def test_objective_capability_checks_run_before_any_compute():
    from qhn.errors import CapabilityError
    from qhn.inference.elbo import ELBO

    data_term, prior = _real_setup(2)
    model = _hypernet(2, 1, sampled=True)
    with pytest.raises(CapabilityError, match="selbo"):
        fit(model, ELBO(data_term, prior), TrainConfig(steps=3))
    assert model.stats.circuit_executions == 0
