"""Experiments on top of the engine: AdaMML against its baselines, the demo, robustness sweeps.

The engine trains one configuration; an experiment trains several related ones (AdaMML, weighted
fusion and a random policy at AdaMML's cost, from the same pre-trained parts) and compares them.
Nothing in `adamml.engine` imports this package.

| module | what it holds |
| --- | --- |
| `compare` | one config in, AdaMML and its two baselines out |
| `demo` | ``adamml demo``: `compare` on SyntheticAV, the unimodal rows, the evidence check |
| `tables` | the paper-table harness of ``examples/tableN_*.py``: rows -> configs -> runs |
| `report` | the one results-table layout (`format_table`) both use |
| `plots` | the demo's figures |
"""

from __future__ import annotations

from .compare import METHODS, OPTIONAL_METHODS, Comparison, compare, derived_config

__all__ = ["METHODS", "OPTIONAL_METHODS", "Comparison", "compare", "derived_config"]
