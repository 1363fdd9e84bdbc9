"""The modality, its backbones and models, reached through the plugin's entry points."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adamml_mv.backbone import MotionVectorNet
from adamml_mv.segments import mv_frame_indices, stack_segments

MODELS = ("adamml_rgb_flow_mv", "fusion_rgb_mv", "unimodal_mv")


def test_entry_points_register_the_modality_backbones_and_models(plugin) -> None:
    import adamml

    mv = adamml.get_modality("mv")
    assert mv.input_spec.shape == (8, 10, 224, 224) and mv.consecutive == 5
    assert mv.input_spec.shape[1:] == adamml.get_modality("flow").input_spec.shape[1:]
    assert {"mv_convnet", "mv_convnet_policy"} <= set(adamml.list_backbones("mv_*"))
    names = set(adamml.list_models())
    assert {*MODELS, *(f"test_{m}" for m in MODELS)} <= names
    sources = {p.name: p.distribution for p in adamml.list_plugins()}
    assert sources["mv"] == "adamml-mv 0.1.0" and sources["test_unimodal_mv"] == "adamml-mv 0.1.0"


@pytest.mark.parametrize("name", MODELS)
def test_tiny_twins_run_on_their_input_spec(plugin, name: str) -> None:
    import adamml

    model = adamml.create_model(f"test_{name}", num_classes=3).eval()
    inputs = {m: torch.randn(2, 3, *spec.shape) for m, spec in model.input_spec.items()}
    with torch.no_grad():
        out = model(inputs)
    assert out.logits.shape == (2, 3) and torch.isfinite(out.logits).all()
    assert out.decisions.shape == (2, 3, len(model.modalities))
    if "mv" in model.input_spec:  # the plugin modality keeps its own (small) backbones
        assert model.input_spec["mv"].shape == (4, 10, 32, 32)
        assert all(
            isinstance(b, MotionVectorNet) for m, b in model.router.backbones.items() if m == "mv"
        )


def test_the_policy_looks_at_motion_vectors_and_flow_is_recognised(plugin) -> None:
    import adamml
    from adamml.flops import measure_cost_table

    model = adamml.create_model("adamml_rgb_flow_mv", num_classes=5)
    assert model.modalities == ("rgb", "flow")
    assert model.policy_modalities == ("rgb", "mv")
    assert isinstance(model.policy_extractors()["mv"], MotionVectorNet)
    table = measure_cost_table(model)
    # per 4x160x160 view: the motion-vector extractor (0.088 GMACs) is a quarter of the
    # MobileNetV2 that sees RGB (0.375)
    assert table.policy["mv"] == pytest.approx(0.0885, abs=1e-3)
    assert 0.2 < table.policy["mv"] / table.policy["rgb"] < 0.3
    twin = measure_cost_table(adamml.create_model("test_adamml_rgb_flow_mv", num_classes=5))
    assert set(twin.policy) == {"rgb", "mv"} and twin.policy["mv"] > 0


def test_backbone_contract_gradients_and_fast_path() -> None:
    net = MotionVectorNet(in_chans=10, widths=(8, 16, 32, 64), num_classes=4, frames=8)
    x = torch.randn(3, 8, 10, 32, 32)
    assert net.forward_features(x).shape == (3, net.num_features) == (3, 64)
    net(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    net.eval()
    with torch.no_grad():
        plain = net.forward_head(net.forward_features(x.requires_grad_(False)))
        with torch.inference_mode():
            fast = net(x)  # BatchNorm folded, channels_last
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-4)


def test_fields_stack_like_flow_pairs() -> None:
    idx = np.array([[0, 3], [7, 9]])
    frames = mv_frame_indices(idx, 5, 10)
    assert frames[0, 0].tolist() == [1, 2, 3, 4, 5]  # flow pairs (0,1) ... (4,5)
    assert frames[1, 1].tolist() == [9, 9, 9, 9, 9]  # clamped like flow_pairs
    fields = {k: np.full((64, 80, 2), (k, -k), np.float32) for k in range(10)}
    out = stack_segments(fields, idx, 10, size=(32, 32))
    assert out.shape == (2, 2, 10, 32, 32)
    # channels dx1, dy1, ..., dx5, dy5 in adamml's flow normalisation (a monotone scaling)
    first = out[0, 0, :, 0, 0]
    assert torch.all(first[0::2] > 0) and torch.all(first[1::2] < 0)
    assert torch.all(first[0::2][1:] > first[0::2][:-1])
