"""What a trained hypernetwork leaves behind: its networks, to predict with and to take away.

A :class:`TrainedNetworks` holds, for a task's binary network, the **mode** network (the most
probable bitstring of ``q``, or the most frequent shot) and the **BMA support**: the networks
``s_k`` standing for ``q`` with weights ``w_k`` (summing to 1), as
:func:`qhn.train.evaluate.model_support` chooses them — exactly the networks the run's reported
metrics were computed on. Predictions:

- ``mode``: ``p(y | x, s_mode)``;
- ``bma``: ``p̄(y | x) = Σ_k w_k p(y | x, s_k)``;

labels are the argmax (a tie goes to the lower class).

Export (:meth:`TrainedNetworks.to_arrays`, :meth:`TrainedNetworks.save`): the decoded weight
matrices ``W_l`` ``(fan_in, fan_out)`` (values of the alphabet, ±1 by default: ``w = 2b − 1``) and
biases ``b_l`` ``(fan_out,)`` of the mode network by layer, and the same stacked over the top-k
BMA networks with their weights. A network computes ``h_l = φ(h_{l−1} W_l + b_l)`` on hidden
layers and logits ``z = h_{m−1} W_m + b_m``; probabilities ``[σ(−z), σ(z)]`` for one output,
``softmax(z)`` otherwise. :func:`to_sequential` loads one network into a ``torch.nn.Sequential``
of ``Linear`` layers (``weight = W_lᵀ``) and activations that returns the logits.

Formats: ``npz`` (NumPy arrays; keys ``W1…Wm``, ``b1…bm``, ``bma_W1…``, ``bma_b1…``,
``bma_weight``, ``layer_sizes``, ``activation``, ``feature_mean``/``feature_std`` when the
features were standardized, ``classes`` when known) and ``torch`` (a ``torch.save`` of the same
keys as tensors, lists and strings, loadable with ``weights_only=True``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qhn.bits import index_to_bits
from qhn.errors import ConfigError, choices
from qhn.io import atomic_torch_save, atomic_write_bytes
from qhn.models.network import BinaryNetwork
from qhn.models.prediction import class_probabilities

__all__ = [
    "FORMATS",
    "PREDICTORS",
    "Sign",
    "TrainedNetworks",
    "load_export",
    "sequential_proba",
    "to_sequential",
]

PREDICTORS = ("bma", "mode")
FORMATS = ("npz", "torch")


class Sign(torch.nn.Module):
    """``sign(z)`` with ``sign(0) = +1``, the binary hidden unit (``torch.sign(0)`` is 0)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z >= 0).to(z.dtype) * 2 - 1


_MODULES = {"sign": Sign, "relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}


def check_predictor(predictor: str) -> str:
    """``predictor`` if it is one of :data:`PREDICTORS`, else a :class:`ConfigError`."""
    if predictor not in PREDICTORS:
        raise ConfigError(f"unknown predictor {predictor!r}; choose one of: {choices(PREDICTORS)}")
    return predictor


@dataclass(frozen=True)
class TrainedNetworks:
    """The mode network and the BMA support of a trained model (see the module docstring).

    Shapes: ``mode_bits`` ``(n,)`` uint8; ``bits`` ``(K, n)`` uint8; ``weights`` ``(K,)`` float64
    summing to 1; ``covered``: the mass of ``q`` on the support before renormalizing;
    ``feature_mean``/``feature_std`` ``(d,)`` (None: inputs are used as given); ``classes`` the
    original label of each class.
    """

    network: BinaryNetwork
    mode_bits: torch.Tensor
    bits: torch.Tensor
    weights: torch.Tensor
    covered: float = 1.0
    feature_mean: np.ndarray | None = None
    feature_std: np.ndarray | None = None
    classes: list[Any] | None = None

    @classmethod
    def from_model(
        cls,
        model: Any,
        network: BinaryNetwork,
        *,
        shots: int | None = None,
        generator: torch.Generator | None = None,
        **scaling: Any,
    ) -> TrainedNetworks:
        """The networks of a trained :class:`~qhn.hypernetwork.QuantumHypernetwork`, chosen as
        :func:`~qhn.train.evaluate.evaluate_with_support` chooses them (exact ``q`` when the
        model gives it and ``shots`` is None, else ``shots`` measurements drawn with
        ``generator``). ``scaling``: ``feature_mean``, ``feature_std``, ``classes``."""
        from qhn.train.evaluate import model_support

        support, _ = model_support(model, shots=shots, generator=generator)
        return cls.from_support(network, support, **scaling)

    @classmethod
    def from_support(cls, network: BinaryNetwork, support: Any, **scaling: Any) -> TrainedNetworks:
        """From a :class:`~qhn.train.evaluate.Support`: the mode is the argmax of ``q`` when it
        is known exactly, else the heaviest support network (as the evaluation reports it)."""
        n = network.n_bits
        if support.probs is not None:
            mode_index = int(support.probs.argmax())
        else:
            mode_index = int(support.indices[support.weights.argmax()])
        return cls(
            network,
            index_to_bits(mode_index, n),
            index_to_bits(support.indices, n),
            support.weights.to(torch.float64),
            float(support.covered),
            **scaling,
        )

    # ------------------------------------------------------------------ prediction
    def scale(self, x: Any) -> torch.Tensor:
        """Inputs scaled as the training data were: ``(x − μ)/σ`` (as given without scaling).

        Shapes: ``(B, d)`` → ``(B, d)`` float64.
        """
        d = self.network.layer_sizes[0]
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError("features x must be numbers (a 2-D array of floats)") from None
        if x.ndim != 2 or x.shape[1] != d:
            raise ConfigError(f"features x must have shape (B, {d}), got {x.shape}")
        if not np.isfinite(x).all():
            row = int(np.argwhere(~np.isfinite(x))[0][0])
            raise ConfigError(f"features x hold NaN or inf (first at row {row}); remove them")
        if self.feature_mean is not None:
            x = (x - self.feature_mean) / self.feature_std
        return torch.from_numpy(np.ascontiguousarray(x))

    def predict_proba(self, x: Any, predictor: str = "bma") -> torch.Tensor:
        """Class probabilities of raw inputs (scaled here). Shapes: ``(B, d)`` → ``(B, K)``."""
        return self.proba_scaled(self.scale(x), predictor)

    def proba_scaled(self, x: torch.Tensor, predictor: str = "bma") -> torch.Tensor:
        """Class probabilities of already scaled inputs. Shapes: ``(B, d)`` → ``(B, K)``."""
        if check_predictor(predictor) == "mode":
            return self.network.predict_proba(self.mode_bits[None], x)[0]
        return self.network.average_proba(self.bits, self.weights, x)

    # ------------------------------------------------------------------ export
    def to_arrays(self, top_k: int | None = None) -> dict[str, Any]:
        """The export as NumPy arrays (see the module docstring); ``top_k`` keeps the ``k``
        heaviest BMA networks (default: all), their weights renormalized to sum to 1."""
        order = torch.argsort(self.weights, descending=True, stable=True)
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise ConfigError(f"top_k must be a positive integer, got {top_k!r}")
            order = order[:top_k]
        kept = self.weights[order]
        out: dict[str, Any] = {
            "layer_sizes": np.asarray(self.network.layer_sizes, dtype=np.int64),
            "activation": np.asarray(self._activations(self.mode_bits[None])[0]),
            "mode_bits": self.mode_bits.numpy().copy(),
            "bma_bits": self.bits[order].numpy().copy(),
            "bma_weight": (kept / kept.sum()).numpy().copy(),
            "bma_covered": np.asarray(self.covered * float(kept.sum())),
            "bma_activation": np.asarray(self._activations(self.bits[order])),
        }
        out.update(self._layers(self.mode_bits[None], "", squeeze=True))
        out.update(self._layers(self.bits[order], "bma_", squeeze=False))
        if self.feature_mean is not None:
            out["feature_mean"] = np.asarray(self.feature_mean, dtype=np.float64)
            out["feature_std"] = np.asarray(self.feature_std, dtype=np.float64)
        if self.classes is not None:
            out["classes"] = np.asarray([str(c) for c in self.classes])
        return out

    def _activations(self, bits: torch.Tensor) -> list[str]:
        return self.network.decode(bits).activation_names()

    def _layers(self, bits: torch.Tensor, prefix: str, *, squeeze: bool) -> dict[str, np.ndarray]:
        decoded = self.network.decode(bits)
        out = {}
        for layer, w in enumerate(decoded.weights, start=1):
            out[f"{prefix}W{layer}"] = (w[0] if squeeze else w).numpy().copy()
            if decoded.biases is not None:
                b = decoded.biases[layer - 1]
                out[f"{prefix}b{layer}"] = (b[0] if squeeze else b).numpy().copy()
        return out

    def save(self, path: str | Path, format: str = "npz", *, top_k: int | None = None) -> Path:
        """Write the export atomically as ``npz`` or ``torch``; return the path."""
        if format not in FORMATS:
            raise ConfigError(
                f"unknown export format {format!r}; choose one of: {choices(FORMATS)}"
            )
        path = Path(path)
        arrays = self.to_arrays(top_k)
        if format == "npz":
            import io

            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            atomic_write_bytes(path, buffer.getvalue())
        else:
            atomic_torch_save(path, _as_torch(arrays))
        return path


def _as_torch(arrays: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in arrays.items():
        if value.dtype.kind in "US":
            out[key] = value.tolist()
        else:
            out[key] = torch.from_numpy(np.ascontiguousarray(value))
    return out


def load_export(path: str | Path) -> dict[str, Any]:
    """Read an export written by :meth:`TrainedNetworks.save` (either format) as NumPy arrays."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"export file not found: {str(path)!r}")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}
        state = torch.load(path, weights_only=True)
    except Exception as error:  # numpy and torch raise many types for a bad file
        raise ConfigError(f"cannot read export {str(path)!r}: {error}") from None
    return {
        key: np.asarray(value.numpy() if isinstance(value, torch.Tensor) else value)
        for key, value in state.items()
    }


def to_sequential(export: dict[str, Any], k: int | None = None) -> torch.nn.Sequential:
    """The mode network (``k`` None) or BMA network ``k`` of an export as a float64
    ``torch.nn.Sequential`` of ``Linear`` and activation modules returning logits ``(B, out)``."""
    prefix = "" if k is None else "bma_"
    sizes = [int(v) for v in np.asarray(export["layer_sizes"]).reshape(-1)]
    activation = export["activation"] if k is None else export["bma_activation"][k]
    activation = str(np.asarray(activation).reshape(()))
    modules: list[torch.nn.Module] = []
    for layer in range(1, len(sizes)):
        w = np.asarray(export[f"{prefix}W{layer}"])
        b = export.get(f"{prefix}b{layer}")
        if k is not None:
            w = w[k]
            b = None if b is None else np.asarray(b)[k]
        linear = torch.nn.Linear(w.shape[0], w.shape[1], bias=b is not None, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
            if b is not None:
                linear.bias.copy_(torch.from_numpy(np.asarray(b)))
        modules.append(linear)
        if layer < len(sizes) - 1:
            modules.append(_MODULES[activation]())
    return torch.nn.Sequential(*modules)


def sequential_proba(export: dict[str, Any], x: Any, predictor: str = "bma") -> torch.Tensor:
    """Class probabilities of raw inputs ``(B, d)`` from an export alone, through
    :func:`to_sequential`: ``(x − μ)/σ`` when the export has a scaling, then the mode network or
    the ``bma_weight``-weighted average of the BMA networks. Shapes: → ``(B, n_classes)``."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float64))
    if "feature_mean" in export:
        x = (x - torch.from_numpy(export["feature_mean"])) / torch.from_numpy(export["feature_std"])
    with torch.no_grad():
        if check_predictor(predictor) == "mode":
            return class_probabilities(to_sequential(export)(x))
        weights = np.asarray(export["bma_weight"])
        total = torch.zeros(x.shape[0], _n_classes(export), dtype=torch.float64)
        for k, weight in enumerate(weights):
            total += float(weight) * class_probabilities(to_sequential(export, k)(x))
        return total


def _n_classes(export: dict[str, Any]) -> int:
    outputs = int(np.asarray(export["layer_sizes"]).reshape(-1)[-1])
    return 2 if outputs == 1 else outputs
