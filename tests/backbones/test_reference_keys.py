"""Reference checkpoint key mapping against the official key tables."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adamml.backbones import create_backbone
from adamml.errors import CheckpointError
from adamml.reference_keys import (
    map_mobilenetv2,
    map_resnet,
    mobilenetv2_to_reference,
    read_key_table,
    resnet_to_reference,
    sub_state_dict,
)

KEYS = Path(__file__).resolve().parents[1] / "fixtures" / "official-checkpoint-keys"
pytestmark = pytest.mark.skipif(not KEYS.is_dir(), reason="official key tables not available")


@pytest.fixture(scope="module")
def table() -> dict[str, tuple[int, ...]]:
    return read_key_table(KEYS / "rgb_sound.tsv")


def _roundtrip(bb: torch.nn.Module, ref_shapes: dict[str, tuple[int, ...]]) -> None:
    ref = mobilenetv2_to_reference(bb.state_dict(), ref_shapes)
    assert list(ref) == list(ref_shapes)
    assert all(tuple(ref[k].shape) == s for k, s in ref_shapes.items())
    back = map_mobilenetv2(ref, bb)
    assert all(torch.equal(back[k], v) for k, v in bb.state_dict().items())


def test_policy_mobilenet(table) -> None:
    ref_shapes = sub_state_dict(table, "policy_net.joint_net.nets.0.")
    assert next(iter(ref_shapes)) == "features.0.0.weight" and "conv.0.weight" in ref_shapes
    _roundtrip(create_backbone("mobilenetv2_policy", modality="rgb"), ref_shapes)
    _roundtrip(
        create_backbone("mobilenetv2_audio_policy", modality="audio"),
        sub_state_dict(table, "policy_net.joint_net.nets.1."),
    )


def test_sound_mobilenet(table) -> None:
    ref_shapes = sub_state_dict(table, "main_net.nets.1.")
    assert "classifier.1.weight" in ref_shapes
    _roundtrip(create_backbone("mobilenetv2_audio", modality="audio", num_classes=31), ref_shapes)


def test_resnet_identity_names(table) -> None:
    ref_shapes = sub_state_dict(table, "main_net.nets.0.")
    bb = create_backbone("resnet50_tsn", modality="rgb", num_classes=31)
    ref = resnet_to_reference(bb.state_dict())
    assert {k: tuple(v.shape) for k, v in ref.items()} == ref_shapes
    assert map_resnet(ref, bb).keys() == bb.state_dict().keys()


def test_flow_resnet_from_other_table() -> None:
    t = read_key_table(KEYS / "rgb_flow_rgbdiff.tsv")
    ref_shapes = sub_state_dict(t, "main_net.nets.1.")
    bb = create_backbone("resnet50_tsn", modality="flow", num_classes=ref_shapes["fc.bias"][0])
    assert {k: tuple(v.shape) for k, v in bb.state_dict().items()} == ref_shapes


def test_mismatch_is_reported(table) -> None:
    bb = create_backbone("mobilenetv2_policy", modality="rgb")
    sound = mobilenetv2_to_reference(
        create_backbone("mobilenetv2_audio", modality="audio", num_classes=31).state_dict(),
        sub_state_dict(table, "main_net.nets.1."),
    )
    with pytest.raises(CheckpointError, match="unmatched"):
        map_mobilenetv2(sound, bb)
    rn = create_backbone("resnet18_tsn", modality="rgb").state_dict()
    with pytest.raises(CheckpointError, match="missing"):
        map_resnet(
            {k: v for k, v in rn.items() if k != "conv1.weight"},
            create_backbone("resnet18_tsn", modality="rgb"),
        )
