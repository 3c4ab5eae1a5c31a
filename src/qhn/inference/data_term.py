"""The data term ``ℓ(s) = −N·C(s)/T`` of METHOD.md §1, exact or evaluated on samples only."""

from __future__ import annotations

from collections.abc import Callable

import torch

from qhn.bits import bits_to_index, index_to_bits
from qhn.errors import ConfigError

__all__ = ["DataTerm"]


class DataTerm:
    """``ℓ(s) = −N·C(s)/T`` for a cost ``C`` (mean loss of network ``s`` over ``N`` examples).

    Two ways to know ``C``: a precomputed landscape over all ``2**n`` bitstrings (exact mode,
    ``E_q[ℓ] = q·ℓ``), or a function evaluated on sampled bitstrings only, with a cache so a
    network measured twice is evaluated once.

    Args:
        n_bits: bitstring width ``n``.
        n_examples: ``N``, the number of training examples behind ``C``.
        temperature: ``T``.
        cost_fn: bits ``(S, n)`` uint8 → ``C`` ``(S,)``; needed in sampled mode.
        cost_vector: ``C`` for every bitstring in our index order, ``(2**n,)``; exact mode.
    """

    def __init__(
        self,
        n_bits: int,
        n_examples: float,
        temperature: float = 1.0,
        *,
        cost_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        cost_vector: torch.Tensor | None = None,
    ) -> None:
        if n_examples <= 0 or temperature <= 0:
            raise ConfigError(
                f"n_examples and temperature must be positive, got {n_examples}, {temperature}"
            )
        if cost_fn is None and cost_vector is None:
            raise ConfigError("a data term needs a cost function or a cost vector")
        if cost_vector is not None:
            cost_vector = torch.as_tensor(cost_vector, dtype=torch.float64)
            if cost_vector.shape != (2**n_bits,):
                raise ConfigError(
                    f"cost vector for {n_bits} bits must have shape ({2**n_bits},), "
                    f"got {tuple(cost_vector.shape)}"
                )
        self.n_bits = n_bits
        self.n_examples = float(n_examples)
        self.temperature = float(temperature)
        self.cost_fn = cost_fn
        self.cost_vector = cost_vector
        self._vector: tuple[float, torch.Tensor, torch.Tensor] | None = None
        self._cache: dict[int, float] = {}
        self.evaluations = 0

    @property
    def scale(self) -> float:
        """``N / T``: ``ℓ = −scale · C``."""
        return self.n_examples / self.temperature

    @property
    def exact(self) -> bool:
        """True when the whole landscape is known."""
        return self.cost_vector is not None

    @property
    def vector(self) -> torch.Tensor:
        """``ℓ`` over all bitstrings, built once per cost vector and scale (an exact objective
        reads it every step; at 18 bits building it was 4 % of a step). Read-only.
        Shapes: ``(2**n,)``."""
        if self.cost_vector is None:
            raise ConfigError("this data term has no precomputed landscape (sampled mode only)")
        cached = self._vector
        if cached is None or cached[0] != self.scale or cached[1] is not self.cost_vector:
            cached = self._vector = (self.scale, self.cost_vector, -self.scale * self.cost_vector)
        return cached[2]

    def costs(self, bits: torch.Tensor) -> torch.Tensor:
        """``C(s)`` for sampled bitstrings. Shapes: ``(..., n)`` → ``(...)`` float64."""
        bits = torch.as_tensor(bits)
        if bits.shape[-1] != self.n_bits:
            raise ConfigError(f"bitstrings must have {self.n_bits} bits, got {bits.shape[-1]}")
        index = bits_to_index(bits)
        if self.cost_vector is not None:
            return self.cost_vector[index]
        unique, inverse = torch.unique(index.reshape(-1), return_inverse=True)
        missing = [i for i in unique.tolist() if i not in self._cache]
        if missing:
            values = self.cost_fn(index_to_bits(torch.tensor(missing), self.n_bits))  # type: ignore[misc]
            self.evaluations += len(missing)
            self._cache.update(zip(missing, values.detach().double().tolist(), strict=True))
        known = torch.tensor([self._cache[i] for i in unique.tolist()], dtype=torch.float64)
        return known[inverse].reshape(index.shape)

    def state_dict(self) -> dict[str, object]:
        """The evaluation cache, so a resumed run sees the very same cost values: evaluating a
        network in another batch may differ in the last bit (BLAS blocking)."""
        keys = sorted(self._cache)
        return {
            "index": torch.tensor(keys, dtype=torch.int64),
            "cost": torch.tensor([self._cache[k] for k in keys], dtype=torch.float64),
            "evaluations": self.evaluations,
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore the cache written by :meth:`state_dict`."""
        index, cost = state["index"], state["cost"]
        self._cache = dict(zip(index.tolist(), cost.tolist(), strict=True))  # type: ignore[union-attr]
        self.evaluations = int(state["evaluations"])  # type: ignore[arg-type]

    def __call__(self, bits: torch.Tensor) -> torch.Tensor:
        """``ℓ(s)`` for sampled bitstrings. Shapes: ``(..., n)`` → ``(...)``."""
        return -self.scale * self.costs(bits)

    def cost_of(self, data_value: float | torch.Tensor) -> float | torch.Tensor:
        """Convert a value of ``ℓ`` (or of ``E_q[ℓ]``) back to the cost scale ``C``."""
        return -data_value / self.scale
