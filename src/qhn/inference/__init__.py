"""Variational inference over bitstrings: the prior, the kernel and MMD estimators.

Only the lower-layer pieces are imported here (they depend on ``torch``, ``qhn.bits`` and
``qhn.errors`` alone); the objectives live in their own modules (``qhn.inference.mle``,
``.elbo``, ``.selbo``), which sit higher in the import order.
"""

from qhn.inference.kernels import HammingKernel, hamming_distances
from qhn.inference.priors import BernoulliPrior

__all__ = ["BernoulliPrior", "HammingKernel", "hamming_distances"]
