"""ModalityRouter: masked training path, sparse evaluation path, SegmentSource, validation."""

from __future__ import annotations

import pytest
import torch
from router_helpers import CountingSource, make_backbones, make_inputs
from torch import nn

from adamml.errors import ConfigError, ShapeError
from adamml.router import ModalityRouter, SegmentSource


def _warm_bn(router: ModalityRouter, inputs: dict, b: int, s: int) -> None:
    """One training pass so BatchNorm running stats are not the trivial init values."""
    router.train()
    router(inputs, torch.ones(b, s, len(router.modalities)))
    router.eval()


@pytest.mark.parametrize("mods", [("rgb",), ("rgb", "audio"), ("rgb", "flow", "audio")])
@pytest.mark.parametrize("b,s", [(1, 1), (2, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_shapes(mods, b, s, training):
    router = ModalityRouter(make_backbones(mods, k=5)).train(training)
    d = (torch.rand(b, s, len(mods)) > 0.5).float()
    out = router(make_inputs(mods, b, s), d)
    assert list(out) == list(mods)
    for k, m in enumerate(mods):
        assert out[m].shape == (b, s, 5)
        assert torch.all(out[m][d[..., k] == 0] == 0)
    feats = router(make_inputs(mods, b, s), d, features=True)
    assert all(f.shape == (b, s, 6) for f in feats.values())


def test_eval_skips_unselected_backbone(hook_log):
    router = ModalityRouter(make_backbones(("rgb", "audio"))).eval()
    log = hook_log(router)
    d = torch.zeros(2, 4, 2)
    d[0, 1, 0] = d[1, 3, 0] = d[1, 0, 0] = 1.0  # three rgb segments, no audio
    out = router(make_inputs(("rgb", "audio"), 2, 4), d)
    assert log == {"rgb": [3], "audio": []}
    assert router.last_counts == {"rgb": 3, "audio": 0}
    assert out["audio"].shape == (2, 4, 4) and torch.all(out["audio"] == 0)
    assert out["audio"].dtype == torch.float32


def test_training_runs_every_segment_once(hook_log):
    router = ModalityRouter(make_backbones(("rgb", "audio"))).train()
    log = hook_log(router)
    router(make_inputs(("rgb", "audio"), 2, 3), torch.zeros(2, 3, 2))
    assert log == {"rgb": [6], "audio": [6]}
    assert router.last_counts == {"rgb": 6, "audio": 6}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sparse_eval_equals_masked_eval(seed):
    torch.manual_seed(seed)
    mods = ("rgb", "flow", "audio")
    b, s = 3, 4
    router = ModalityRouter(make_backbones(mods))
    inputs = make_inputs(mods, b, s)
    _warm_bn(router, inputs, b, s)
    d = (torch.rand(b, s, 3) > 0.5).float()
    d[..., 1] = 0.0  # one modality entirely skipped
    sparse = router(inputs, d)
    again = router(inputs, d)
    for m in mods:
        assert torch.equal(sparse[m], again[m])  # eval is deterministic
    router.eval_mode = "masked"
    masked = router(inputs, d)
    for m in mods:
        torch.testing.assert_close(sparse[m], masked[m], atol=1e-5, rtol=0)
    assert router.last_counts == {m: b * s for m in mods}


def test_training_gradient_reaches_decisions_and_parameters():
    mods = ("rgb", "audio")
    router = ModalityRouter(make_backbones(mods)).train()
    d = torch.ones(2, 3, 2, requires_grad=True)
    out = router(make_inputs(mods, 2, 3), d)
    (out["rgb"].pow(2).sum() + out["audio"].pow(2).sum()).backward()
    assert d.grad is not None and torch.all(d.grad != 0)
    for name, p in router.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_masked_training_multiplies_by_decision_value():
    router = ModalityRouter(make_backbones(("rgb",))).train()
    x = make_inputs(("rgb",), 1, 2)
    full = router(x, torch.ones(1, 2, 1))["rgb"]
    half = router(x, torch.full((1, 2, 1), 0.5))["rgb"]
    torch.testing.assert_close(half, 0.5 * full)


def test_segment_source_gathers_only_selected():
    mods = ("rgb", "flow")
    b, s = 2, 3
    inputs = make_inputs(mods, b, s)
    router = ModalityRouter(make_backbones(mods))
    _warm_bn(router, inputs, b, s)
    source = CountingSource(inputs["flow"])
    assert isinstance(source, SegmentSource)
    d = torch.zeros(b, s, 2)
    d[..., 0] = 1.0
    d[0, 2, 1] = d[1, 0, 1] = 1.0
    out = router({"rgb": inputs["rgb"], "flow": source}, d)
    assert source.calls == [([0, 1], [2, 0])]
    router.eval_mode = "masked"
    ref = router(inputs, d)
    torch.testing.assert_close(out["flow"], ref["flow"], atol=1e-5, rtol=0)
    source.calls.clear()
    router.eval_mode = "sparse"
    router({"rgb": inputs["rgb"], "flow": source}, torch.zeros(b, s, 2))
    assert source.calls == []  # nothing selected: flow is never computed


def test_segment_source_in_training_gathers_all():
    inputs = make_inputs(("flow",), 2, 2)
    source = CountingSource(inputs["flow"])
    router = ModalityRouter(make_backbones(("flow",))).train()
    out = router({"flow": source}, torch.ones(2, 2, 1))
    assert source.calls == [([0, 0, 1, 1], [0, 1, 0, 1])]
    ref = router(inputs, torch.ones(2, 2, 1))
    torch.testing.assert_close(out["flow"], ref["flow"])


def test_sound_alias():
    router = ModalityRouter(make_backbones(("rgb", "audio")))
    assert router.modalities == ("rgb", "audio")
    x = make_inputs(("rgb", "audio"), 1, 2)
    out = router({"rgb": x["rgb"], "sound": x["audio"]}, torch.ones(1, 2, 2))
    assert set(out) == {"rgb", "audio"}


def test_validation_errors():
    router = ModalityRouter(make_backbones(("rgb", "audio")))
    x = make_inputs(("rgb", "audio"), 2, 3)
    with pytest.raises(ShapeError, match="'audio'"):
        router({"rgb": x["rgb"]}, torch.ones(2, 3, 2))
    with pytest.raises(ShapeError, match="M=3"):
        router(x, torch.ones(2, 3, 3))
    with pytest.raises(ShapeError, match="B=2, S=4"):
        router(x, torch.ones(2, 4, 2))
    with pytest.raises(ShapeError, match=r"\(B, S, M\)"):
        router(x, torch.ones(2, 3))
    with pytest.raises(ConfigError, match="eval_mode"):
        ModalityRouter(make_backbones(("rgb",)), eval_mode="lazy")
    with pytest.raises(ConfigError, match="num_classes"):
        ModalityRouter({"rgb": nn.Linear(3, 3)})
    ModalityRouter({"rgb": nn.Linear(3, 3)}, eval_mode="masked")  # masked needs no attributes
