"""Experiments on top of the engine: AdaMML against its baselines, the demo, robustness sweeps.

The engine trains one configuration; an experiment trains several related ones (AdaMML, weighted
fusion and a random policy at AdaMML's cost, from the same pre-trained parts) and compares them.
Nothing in `adamml.engine` imports this package.
"""

from __future__ import annotations

from .compare import METHODS, Comparison, compare, derived_config

__all__ = ["METHODS", "Comparison", "compare", "derived_config"]
