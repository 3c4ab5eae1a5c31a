"""Figure builders. Each returns a :class:`matplotlib.figure.Figure` built without pyplot (so no
GUI backend is touched; saving uses Agg); callers save it. matplotlib is imported only inside them.
"""

from qhn.plots.landscape import landscape_histogram

__all__ = ["landscape_histogram"]
