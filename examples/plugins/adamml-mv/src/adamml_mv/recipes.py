"""The plugin's models (``adamml.models`` entry points; each gets a tiny ``test_`` twin)."""

from __future__ import annotations

from adamml.zoo import ModelRecipe

__all__ = ["ADAMML_RGB_FLOW_MV", "FUSION_RGB_MV", "UNIMODAL_MV"]

ADAMML_RGB_FLOW_MV = ModelRecipe(
    ("rgb", "flow"),
    ("rgb", "mv"),
    description="AdaMML-MV: the policy sees motion vectors (free from the decoder), flow is "
    "recognised (as adamml_rgb_flow_rgbdiff with mv for rgbdiff)",
)
FUSION_RGB_MV = ModelRecipe(
    ("rgb", "mv"), policy="all", description="weighted late fusion of RGB and motion vectors"
)
UNIMODAL_MV = ModelRecipe(
    ("mv",), policy="all", fusion="average", description="motion vectors alone, one backbone"
)
