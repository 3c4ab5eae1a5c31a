"""Gradient estimators: backprop, the parameter-shift rule, and the score function.

Build one by name with :func:`make_estimator` (``"backprop"``, ``"parameter-shift"``,
``"score-function"``); it checks the backend can serve it before any compute.
"""

from qhn.gradients.backprop import Backprop
from qhn.gradients.base import (
    ESTIMATOR_NAMES,
    BitFunction,
    Estimator,
    GradientEstimator,
    make_estimator,
    valid_estimators,
)
from qhn.gradients.parameter_shift import (
    SHIFT,
    ParameterShift,
    ShiftPlan,
    combine_shifts,
    plan_shifts,
)
from qhn.gradients.score_function import ScoreFunction

__all__ = [
    "ESTIMATOR_NAMES",
    "SHIFT",
    "Backprop",
    "BitFunction",
    "Estimator",
    "GradientEstimator",
    "ParameterShift",
    "ScoreFunction",
    "ShiftPlan",
    "combine_shifts",
    "make_estimator",
    "plan_shifts",
    "valid_estimators",
]
