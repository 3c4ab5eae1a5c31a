"""Noisy expectations ``E_x[f] = Σ_s q_x(s) f(s)`` at many noise scales from one trajectory set.

For circuits made of sub-layers (disjoint CNOTs, then RY on every qubit, then RZ on every qubit —
:func:`qhn.circuits.qhn_reference`) under the reference noise model: after every one-qubit gate a
Pauli error with probability ``p1(x) = x·p1``, after every CNOT one with ``p2(x) = x·p2``, each
non-identity Pauli equally likely (PastaQ's convention), no readout noise.

**Last sub-layer, exactly.** Its RZ and any Pauli after its RY or RZ only change phases or flip a
measured bit (X, Y flip; Z does not). Each such location flips its bit with ``f = 2/3·x·p1``, so a
qubit's bit flips with ``r = 2f(1 − f)``, independently of everything else: these errors are
averaged exactly by scoring every state with the smoothed observable
``f̃_x(s) = Σ_F P_r(F) f(s ⊕ F)`` (:func:`flip_smoothed`) and are left out of the sampling below.

**Estimator over the other locations.** Write ``S`` for the set of locations hit (``k1`` of the
``N1`` one-qubit, ``k2`` of the ``N2`` CNOT ones) and
``P_x(S) = Π_{i∈S} p_i(x) Π_{i∉S} (1 − p_i(x))``. The Pauli drawn at each hit is uniform and
independent of ``x``, so with ``g_S(x) = ⟨f̃_x⟩`` of a trajectory with errors at ``S``,

    E_x[f] = g_∅(x) + Σ_{S≠∅} P_x(S) · (g_S(x) − g_∅(x)).

The patterns are drawn ONCE, at the largest scale ``X`` and conditioned on at least one error,
``S ~ Q(S) = P_X(S) / (1 − P_X(∅))``, and reweighted to every ``x`` by

    w_x(S) = P_x(S)/Q(S)
           = (1 − P_X(∅)) · (x/X)^{k1+k2} · Π_k ((1 − x·p_k)/(1 − X·p_k))^{N_k − k_k},

so ``Ê_x = g_∅(x) + (1/T) Σ_t w_x(S_t)·(g_{S_t}(x) − g_∅(x))`` is unbiased at every ``x`` and
exact at ``x = 0`` (all weights vanish). Its standard error is the sample standard deviation of
the ``T`` terms over ``√T``. Subtracting ``g_∅`` is a control variate with known mean: it removes
the variance of the weights times the level of ``f``.

**Trajectories.** A Pauli after a CNOT commutes with the other (disjoint) CNOTs of its layer, so
every error of a sub-layer folds into that sub-layer's one-qubit matrices,
``M_q = E_rz·RZ·E_ry·RY·E_cx`` (last sub-layer: ``RY·E_cx``), one ``2 × 2`` per qubit and
trajectory. A sub-layer is applied as a few dense matrices on contiguous groups of
≤ ``max_group`` qubits (Kronecker products of the ``M_q``, times the CNOTs inside the group): for
each group, from the last to the first, ``ψ ← G · ψ.reshape(T, −1, 2^k)ᵀ``, one batched matrix
product that also rotates the qubit order so the next group comes last; after all groups the
order is back. A trajectory starts from the stored noiseless state before its first erroneous
sub-layer (a product state when that is the first). Y is applied as ``X·Z`` (a global phase away).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from qhn.circuits.ir import Circuit
from qhn.errors import ConfigError, MemoryBudgetError

__all__ = [
    "REFERENCE_P1",
    "REFERENCE_P2",
    "LayeredCircuit",
    "ScaledEstimate",
    "ScaledEstimator",
    "estimate_scaled",
    "flip_smoothed",
    "parse_layered",
    "scale_weights",
]

#: The reference noise study's base rates (METHOD.md §8): ``p1 = 0.001·x``, ``p2 = 0.00375·x``.
REFERENCE_P1 = 0.001
REFERENCE_P2 = 0.00375

# I, X, X·Z (= −iY), Z as real matrices.
_PAULIS = torch.tensor(
    [[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1], [1, 0]], [[1, 0], [0, -1]]], dtype=torch.float64
)


@dataclass(frozen=True)
class LayeredCircuit:
    """A circuit of sub-layers: ``pairs[d]`` the disjoint (control, target) CNOTs of sub-layer
    ``d``, then ``ry[d][q]`` and ``rz[d][q]``, the parameter indices of the rotations on qubit
    ``q``."""

    n_qubits: int
    pairs: tuple[tuple[tuple[int, int], ...], ...]
    ry: tuple[tuple[int, ...], ...]
    rz: tuple[tuple[int, ...], ...]

    @property
    def depth(self) -> int:
        return len(self.ry)

    @property
    def n_one(self) -> int:
        """Number of sampled one-qubit error locations: each RY and RZ but the last sub-layer's
        (whose errors only flip measured bits and are averaged exactly)."""
        return 2 * (self.depth - 1) * self.n_qubits

    @property
    def n_two(self) -> int:
        """Number of two-qubit error locations (each CNOT)."""
        return sum(len(p) for p in self.pairs)


def parse_layered(circuit: Circuit) -> LayeredCircuit:
    """Split ``circuit`` into sub-layers (CNOTs on disjoint pairs, RY on every qubit, RZ on every
    qubit); refuse any other shape."""
    n = circuit.n_qubits
    shape_error = ConfigError(
        f"{circuit.name}: the noise study needs sub-layers of disjoint CNOTs, then RY on every "
        "qubit, then RZ on every qubit (the qhn_reference ansatz)"
    )
    pairs, ry, rz = [], [], []
    gates = list(circuit.gates)
    i = 0
    while i < len(gates):
        layer: list[tuple[int, int]] = []
        while i < len(gates) and gates[i].name == "cnot":
            layer.append(gates[i].wires)  # type: ignore[arg-type]
            i += 1
        touched = [q for pair in layer for q in pair]
        if len(set(touched)) != len(touched):
            raise shape_error
        rotations = []
        for name in ("ry", "rz"):
            block = gates[i : i + n]
            if len(block) != n or any(g.name != name for g in block):
                raise shape_error
            if sorted(g.wires[0] for g in block) != list(range(n)):
                raise shape_error
            params = [0] * n
            for g in block:
                params[g.wires[0]] = g.param
            rotations.append(tuple(params))
            i += n
        pairs.append(tuple(layer))
        ry.append(rotations[0])
        rz.append(rotations[1])
    if not ry:
        raise shape_error
    return LayeredCircuit(n, tuple(pairs), tuple(ry), tuple(rz))


@dataclass(frozen=True)
class ScaledEstimate:
    """Estimates of ``E_x[f_j]`` for one parameter row.

    ``mean``, ``se``: ``(X, J)`` for the scales ``x`` and observables ``f_j``; ``noiseless``:
    ``(J,)``, the exact ``f₀``; ``trajectories``: how many error patterns were simulated.
    """

    scales: torch.Tensor
    mean: torch.Tensor
    se: torch.Tensor
    noiseless: torch.Tensor
    trajectories: int


def _check_scales(scales: Sequence[float], p1: float, p2: float) -> torch.Tensor:
    values = torch.as_tensor([float(x) for x in scales], dtype=torch.float64)
    if values.numel() == 0:
        raise ConfigError("give at least one noise scale")
    for x in values.tolist():
        if not math.isfinite(x) or x < 0:
            raise ConfigError(f"noise scale {x!r} must be a finite number >= 0")
        if x * max(p1, p2) >= 1:
            raise ConfigError(
                f"noise scale {x:g} gives an error probability x·p = {x * max(p1, p2):g} >= 1; "
                "use a smaller scale"
            )
    return values


def _groups(n: int, pairs: Sequence[tuple[int, int]], max_group: int) -> list[tuple[int, int]]:
    """Contiguous qubit ranges ``(start, size)`` of at most ``max_group`` qubits (a CNOT pair is
    never split; pairs are adjacent qubits), first to last."""
    partner = {}
    for a, b in pairs:
        if abs(a - b) != 1:
            raise ConfigError(f"CNOT ({a}, {b}) is not between neighbouring qubits")
        partner[min(a, b)] = max(a, b)
    groups, start = [], 0
    while start < n:
        size = 0
        while start + size < n:
            q = start + size
            step = 2 if q in partner else 1
            if size + step > max_group and size > 0:
                break
            size += step
        groups.append((start, size))
        start += size
    return groups


def _cnot_permutation(n_group: int, pairs: Sequence[tuple[int, int]], start: int) -> torch.Tensor:
    """The CNOTs inside a group as a ``2^k × 2^k`` permutation matrix (group qubit ``start`` most
    significant)."""
    k = n_group
    index = torch.arange(2**k)
    image = index.clone()
    for control, target in pairs:
        c, t = control - start, target - start
        if not (0 <= c < k and 0 <= t < k):
            continue
        on = (image >> (k - 1 - c)) & 1
        image = image ^ (on << (k - 1 - t))
    perm = torch.zeros((2**k, 2**k), dtype=torch.float64)
    perm[image, index] = 1
    return perm


class _Simulator:
    """Batched trajectories of one parameter row of a :class:`LayeredCircuit`."""

    def __init__(self, layered: LayeredCircuit, theta: torch.Tensor, max_group: int) -> None:
        self.layered = layered
        n, depth = layered.n_qubits, layered.depth
        self.n = n
        ry_idx = torch.tensor(layered.ry)
        rz_idx = torch.tensor(layered.rz)
        half_y, half_z = theta[ry_idx] / 2, theta[rz_idx] / 2  # (D, n)
        c, s = torch.cos(half_y), torch.sin(half_y)
        self.ry = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
        phase = torch.exp(-1j * half_z.to(torch.complex128))
        self.rz = torch.zeros((depth, n, 2, 2), dtype=torch.complex128)
        self.rz[..., 0, 0], self.rz[..., 1, 1] = phase, phase.conj()
        self.groups = [_groups(n, p, max_group) for p in layered.pairs]
        self.perms = [
            [_cnot_permutation(k, p, a) for a, k in g]
            for g, p in zip(self.groups, layered.pairs, strict=True)
        ]
        # Which CNOT (and which side of it) sits on each qubit of each sub-layer.
        self.cx_site = torch.full((depth, n), -1, dtype=torch.long)
        self.cx_side = torch.zeros((depth, n), dtype=torch.long)
        site = 0
        for d, layer in enumerate(layered.pairs):
            for a, b in layer:
                self.cx_site[d, a], self.cx_side[d, a] = site, 0
                self.cx_site[d, b], self.cx_side[d, b] = site, 1
                site += 1

    def matrices(self, one: torch.Tensor, two: torch.Tensor) -> torch.Tensor:
        """Per-trajectory one-qubit matrices ``M[t, d, q]``. Shapes: ``one (T, 2, D, n)`` Pauli
        codes after each RY (``[:, 0]``) and RZ (``[:, 1]``); ``two (T, N2)`` codes 0..15 after
        each CNOT (base-4 digits: control, target) → ``(T, D, n, 2, 2)`` complex128."""
        count = one.shape[0]
        depth, n = self.layered.depth, self.n
        if two.shape[1]:
            padded = torch.cat([two, torch.zeros((count, 1), dtype=two.dtype)], 1)
            codes = padded[:, self.cx_site]  # (T, D, n); site −1 reads the zero column
            cx = torch.where(self.cx_side == 0, codes // 4, codes % 4)
        else:
            cx = torch.zeros((count, depth, n), dtype=torch.long)
        paulis = _PAULIS.to(torch.complex128)
        e_cx, e_ry, e_rz = paulis[cx], paulis[one[:, 0]], paulis[one[:, 1]]
        ry = self.ry.to(torch.complex128)
        m = e_rz[:, :-1] @ self.rz[:-1] @ e_ry[:, :-1] @ ry[:-1] @ e_cx[:, :-1]
        last = ry[-1] @ e_cx[:, -1]
        return torch.cat([m, last.unsqueeze(1)], 1)

    def layer(self, x: torch.Tensor, m: torch.Tensor, d: int) -> torch.Tensor:
        """Apply sub-layer ``d`` (its CNOTs, then the one-qubit matrices ``m (T, n, 2, 2)``) to
        states ``x (T, C, 2**n)`` (``C`` vectors per trajectory share its matrices), group by
        group from the last (see the module docstring)."""
        count, width = x.shape[:2]
        for (a, k), perm in zip(reversed(self.groups[d]), reversed(self.perms[d]), strict=True):
            g = m[:, a]
            for q in range(a + 1, a + k):
                g = (g[:, :, None, :, None] * m[:, q, None, :, None, :]).reshape(
                    count, 2 * g.shape[1], 2 * g.shape[2]
                )
            g = g @ perm.to(g.dtype)
            x = torch.matmul(g[:, None], x.reshape(count, width, -1, 2**k).transpose(2, 3))
        return x.reshape(count, width, -1)

    def run(
        self, matrices: torch.Tensor, start: int, psi: torch.Tensor | None, dtype: torch.dtype
    ) -> torch.Tensor:
        """Probabilities after sub-layers ``start..D−1``. ``psi``: the state before sub-layer
        ``start`` ``(2**n,)``, or None for ``|0…0⟩`` at ``start = 0`` (then the first sub-layer
        gives a product state: its CNOTs act on ``|0…0⟩`` trivially). The last sub-layer's
        matrices ``RY·E_cx`` are real, so it acts on the real and imaginary parts as two real
        vectors (half the arithmetic). Shapes: ``matrices (T, D, n, 2, 2)`` → ``(T, 2**n)``
        float64."""
        count, n, depth = matrices.shape[0], self.n, self.layered.depth
        m = matrices.to(dtype)
        if psi is None:
            x = m[:, 0, 0, :, 0]
            for q in range(1, n):
                x = (x[:, :, None] * m[:, 0, q, None, :, 0]).reshape(count, -1)
            x, start = x.unsqueeze(1), 1
        else:
            x = psi.to(dtype).expand(count, 1, -1)
        for d in range(start, depth - 1):
            x = self.layer(x, m[:, d], d)
        if start < depth:
            real = torch.float32 if dtype == torch.complex64 else torch.float64
            parts = torch.cat([x.real, x.imag], 1)
            x = self.layer(parts, matrices[:, -1].real.to(real), depth - 1)
        return x.abs().square().sum(1).to(torch.float64)

    def states(self, matrices: torch.Tensor) -> list[torch.Tensor]:
        """Noiseless states before each sub-layer and after the last (complex128 ``(2**n,)``
        each) from the noiseless ``matrices (1, D, n, 2, 2)``."""
        psi = torch.zeros((1, 1, 2**self.n), dtype=torch.complex128)
        psi[0, 0, 0] = 1
        out = [psi[0, 0]]
        for d in range(self.layered.depth):
            psi = self.layer(psi, matrices[:, d], d)
            out.append(psi[0, 0])
        return out


def _draw_conditioned(
    layered: LayeredCircuit, p1: float, p2: float, count: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``count`` error patterns at rates ``p1``, ``p2`` conditioned on at least one error, over
    the locations the trajectories simulate (all but the last sub-layer's one-qubit gates).

    The first hit ``i`` is drawn from ``P(first = i) ∝ p_i Π_{j<i} (1 − p_j)``, the later ones
    independently, so the draw is exact. Returns ``(one (T, 2, D, n), two (T, N2))`` Pauli codes
    (0 = none) and ``first_layer (T,)``, the first sub-layer with an error.
    """
    depth, n, n2 = layered.depth, layered.n_qubits, layered.n_two
    # Locations in circuit order: per sub-layer its CNOTs, its RYs, its RZs.
    kind, layer, slot = [], [], []
    site = 0
    for d in range(depth):
        for _ in layered.pairs[d]:
            kind.append(2), layer.append(d), slot.append(site)
            site += 1
        if d == depth - 1:
            break
        for stage in range(2):
            for q in range(n):
                kind.append(1), layer.append(d), slot.append((stage * depth + d) * n + q)
    kinds = torch.tensor(kind)
    p = torch.where(kinds == 1, p1, p2).to(torch.float64)
    survive = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(torch.log1p(-p), 0)])
    first_weight = p * torch.exp(survive[:-1])
    first = torch.multinomial(first_weight, count, replacement=True, generator=generator)
    positions = torch.arange(len(kind))
    hit = torch.rand((count, len(kind)), generator=generator, dtype=torch.float64) < p
    hit = (hit & (positions > first[:, None])) | (positions == first[:, None])
    u = torch.rand((count, len(kind)), generator=generator, dtype=torch.float64)
    kinds_n = torch.where(kinds == 1, 3, 15)
    codes = torch.where(hit, 1 + torch.floor(u * kinds_n).long().clamp(max=kinds_n - 1), 0)
    one = torch.zeros((count, 2 * depth * n), dtype=torch.long)
    two = torch.zeros((count, n2), dtype=torch.long)
    slots = torch.tensor(slot)
    one[:, slots[kinds == 1]] = codes[:, kinds == 1]
    two[:, slots[kinds == 2]] = codes[:, kinds == 2]
    first_layer = torch.tensor(layer)[first]
    return one.reshape(count, 2, depth, n), two, first_layer


def scale_weights(
    layered: LayeredCircuit,
    scales: torch.Tensor,
    k1: torch.Tensor,
    k2: torch.Tensor,
    p1: float,
    p2: float,
) -> torch.Tensor:
    """Likelihood ratios ``w_x(S) = P_x(S)/Q(S)`` of patterns drawn at the largest scale ``X``
    conditioned on an error, from their hit counts ``k1``, ``k2 (T,)``. Shapes → ``(X, T)``."""
    top = float(scales.max())
    n1, n2 = layered.n_one, layered.n_two
    log_clean = n1 * math.log1p(-top * p1) + n2 * math.log1p(-top * p2)
    log_any = math.log(-math.expm1(log_clean))
    x = scales[:, None]
    positive = x > 0
    ratio = torch.where(positive, x / top, 1.0)
    log_w = (
        log_any
        + (k1 + k2)[None, :] * torch.log(ratio)
        + (n1 - k1)[None, :] * (torch.log1p(-x * p1) - math.log1p(-top * p1))
        + (n2 - k2)[None, :] * (torch.log1p(-x * p2) - math.log1p(-top * p2))
    )
    return torch.where(positive, torch.exp(log_w), 0.0)


def flip_smoothed(observables: torch.Tensor, rates: Sequence[float]) -> torch.Tensor:
    """``f̃_r(s) = Σ_F P_r(F) f(s ⊕ F)`` for independent flips of every bit with probability ``r``:
    the observables seen through a final layer of bit flips, for each rate. Each bit is one
    batched ``2 × 2`` matrix product that also rotates the bit order (as in the trajectories).
    Shapes: ``(2**n, J)`` → ``(2**n, R·J)``, rate-major."""
    size, width = observables.shape
    n = size.bit_length() - 1
    r = torch.as_tensor(list(rates), dtype=torch.float64)[:, None, None, None]
    flips = torch.cat([torch.cat([1 - r, r], 3), torch.cat([r, 1 - r], 3)], 2)  # (R, 1, 2, 2)
    y = observables.T.to(torch.float64).expand(len(rates), width, size)
    for _ in range(n):
        y = torch.matmul(flips, y.reshape(len(rates), width, -1, 2).transpose(2, 3))
    return y.reshape(len(rates) * width, size).T


class ScaledEstimator:
    """``E_x[f_j]`` at every scale ``x`` from one set of error patterns per parameter row (module
    docstring). Everything that does not depend on the row (the circuit's layout, the flip-smoothed
    observables of every scale) is built once here.

    Args:
        circuit: a circuit of sub-layers (:func:`parse_layered`), e.g. ``qhn_reference(n, L)``.
        observables: ``(2**n, J)`` float64, ``f_j(s)`` in our index order.
        scales: the noise scales ``x`` (``p1·x``, ``p2·x`` must stay below 1).
        dtype: of the trajectory states (complex64 halves the memory traffic; its rounding,
            ~1e-7 relative, is far below the Monte Carlo error). Noiseless states are complex128.
        max_group: the most qubits one dense matrix of a sub-layer acts on.
        chunk_bytes: trajectories are simulated in chunks of about this many bytes of state.
    """

    def __init__(
        self,
        circuit: Circuit | LayeredCircuit,
        observables: torch.Tensor,
        scales: Sequence[float],
        *,
        p1: float = REFERENCE_P1,
        p2: float = REFERENCE_P2,
        dtype: torch.dtype = torch.complex64,
        max_group: int = 5,
        chunk_bytes: int = 256 * 2**20,
    ) -> None:
        self.layered = circuit if isinstance(circuit, LayeredCircuit) else parse_layered(circuit)
        n = self.layered.n_qubits
        self.scales = _check_scales(scales, p1, p2)
        if observables.ndim != 2 or observables.shape[0] != 2**n:
            raise ConfigError(
                f"observables need shape (2**{n} = {2**n}, J), got {tuple(observables.shape)}"
            )
        if dtype not in (torch.complex64, torch.complex128):
            raise ConfigError(f"dtype must be complex64 or complex128, got {dtype}")
        self.p1, self.p2, self.dtype, self.max_group = float(p1), float(p2), dtype, max_group
        self.observables = observables.to(torch.float64)
        flip = [2 / 3 * x * p1 for x in self.scales.tolist()]
        rates = [2 * f * (1 - f) for f in flip]
        self.smoothed = flip_smoothed(self.observables, rates).contiguous()  # (2**n, X·J)
        itemsize = torch.empty((), dtype=dtype).element_size()
        per_trajectory = 2**n * (3 * itemsize + 8)
        if per_trajectory > 16 * chunk_bytes:
            raise MemoryBudgetError(
                f"one trajectory of {n} qubits needs ~{per_trajectory:,} bytes, more than 16× "
                f"the chunk of {chunk_bytes:,} bytes; use fewer qubits or a larger chunk"
            )
        self.chunk = max(1, chunk_bytes // per_trajectory)

    def estimate(
        self, theta: torch.Tensor, trajectories: int, generator: torch.Generator
    ) -> ScaledEstimate:
        """Estimates for one parameter row ``theta (P,)`` from ``trajectories`` error patterns
        drawn with ``generator``."""
        if isinstance(trajectories, bool) or not isinstance(trajectories, int) or trajectories < 2:
            raise ConfigError(f"trajectories must be an integer >= 2, got {trajectories!r}")
        layered, values = self.layered, self.scales
        n, depth, width = layered.n_qubits, layered.depth, self.observables.shape[1]
        sim = _Simulator(layered, theta.detach().to(torch.float64), self.max_group)
        clean = sim.matrices(
            torch.zeros((1, 2, depth, n), dtype=torch.long),
            torch.zeros((1, layered.n_two), dtype=torch.long),
        )
        states = sim.states(clean)
        probs = states[-1].unsqueeze(0).abs().square()
        f0 = (probs @ self.observables)[0]
        g0 = (probs @ self.smoothed).reshape(len(values), width)
        top = float(values.max())
        if top == 0 or layered.n_one * self.p1 + layered.n_two * self.p2 == 0:
            g0[values == 0] = f0
            return ScaledEstimate(values, g0, torch.zeros_like(g0), f0, 0)
        one, two, first_layer = _draw_conditioned(
            layered, top * self.p1, top * self.p2, trajectories, generator
        )
        g = torch.empty((trajectories, len(values) * width), dtype=torch.float64)
        for start in range(depth):
            rows = (first_layer == start).nonzero().squeeze(1)
            psi = None if start == 0 else states[start]
            for i in range(0, len(rows), self.chunk):
                part = rows[i : i + self.chunk]
                m = sim.matrices(one[part], two[part])
                g[part] = sim.run(m, start, psi, self.dtype) @ self.smoothed
        g = g.reshape(trajectories, len(values), width).transpose(0, 1)  # (X, T, J)
        k1 = (one > 0).sum((1, 2, 3)).to(torch.float64)
        k2 = (two > 0).sum(1).to(torch.float64)
        w = scale_weights(layered, values, k1, k2, self.p1, self.p2)
        terms = w[:, :, None] * (g - g0[:, None, :])
        mean = g0 + terms.mean(1)
        mean[values == 0] = f0  # no noise: the noiseless value itself, bit for bit
        se = terms.std(1) / math.sqrt(trajectories)
        return ScaledEstimate(values, mean, se, f0, trajectories)


def estimate_scaled(
    circuit: Circuit | LayeredCircuit,
    theta: torch.Tensor,
    observables: torch.Tensor,
    scales: Sequence[float],
    *,
    trajectories: int,
    generator: torch.Generator,
    **options: object,
) -> ScaledEstimate:
    """One row through a :class:`ScaledEstimator` (``options`` are its keyword arguments).
    Shapes: ``theta (P,)``, ``observables (2**n, J)`` → ``(X, J)`` means and standard errors."""
    estimator = ScaledEstimator(circuit, observables, scales, **options)  # type: ignore[arg-type]
    return estimator.estimate(theta, trajectories, generator)
