"""Every registered tiny model streams: the last segment's prediction is the batch forward's."""

from __future__ import annotations

import pytest
import torch
from stream_helpers import inputs_for, mixed_policy, stream_over

import adamml
from adamml.errors import ConfigError


@pytest.mark.parametrize("name", adamml.list_models("test_*"))
def test_the_last_segment_gives_the_batch_forward(name: str) -> None:
    """Every registered tiny model: the running prediction after the last segment, the
    decisions and the cost equal the batch forward's (eval, argmax decisions)."""
    model = adamml.create_model(name, num_classes=5).eval()
    if not getattr(model.fusion, "segmentwise", False):  # none of the built-ins
        with pytest.raises(ConfigError, match="segment"):
            model.stream()
        return
    x = inputs_for(model, 2, 3)
    mixed_policy(model, x)
    with torch.no_grad():
        want = model(x)
    got = stream_over(model, x).output()
    assert torch.equal(got.decisions, want.decisions)
    torch.testing.assert_close(got.logits, want.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(got.gflops, want.gflops.double(), rtol=1e-6, atol=1e-9)
    if want.policy_logits is not None:
        torch.testing.assert_close(got.policy_logits, want.policy_logits, rtol=0, atol=1e-5)
