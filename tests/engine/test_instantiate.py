"""Initialising a model's backbones and policy feature extractors from unimodal checkpoints."""

from __future__ import annotations

import pytest
import torch

import adamml
from adamml.engine.instantiate import load_backbone_init
from adamml.errors import CheckpointError, ConfigError


def test_policy_extractors_initialise_from_unimodal_models(tmp_path) -> None:
    torch.manual_seed(0)
    rgb = adamml.create_model("test_unimodal_rgb", num_classes=6, backbones={"rgb": "tiny_policy"})
    audio = adamml.create_model("test_unimodal_audio", num_classes=6)
    torch.save({"model": rgb.state_dict()}, tmp_path / "rgb.pt")
    torch.save(audio.state_dict(), tmp_path / "audio.pt")  # a plain state dict works too
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=6)
    before = {k: v.clone() for k, v in model.router.state_dict().items()}
    load_backbone_init(
        model, {"policy.rgb": str(tmp_path / "rgb.pt"), "policy.audio": str(tmp_path / "audio.pt")}
    )
    for m, src in (("rgb", rgb), ("audio", audio)):
        got = model.policy.backbones[m].state_dict()
        want = src.router.backbones[m].state_dict()
        assert set(got) < set(want)  # the classifier is left out
        assert all(torch.equal(got[k], want[k]) for k in got), m
    after = model.router.state_dict()  # recognition backbones untouched
    assert all(torch.equal(before[k], after[k]) for k in before)

    with pytest.raises(ConfigError, match="policy.flow"):
        load_backbone_init(model, {"policy.flow": str(tmp_path / "rgb.pt")})
    resnet = adamml.create_model("test_unimodal_rgb", num_classes=6)  # another architecture
    torch.save({"model": resnet.state_dict()}, tmp_path / "resnet.pt")
    with pytest.raises(CheckpointError, match="policy.rgb"):
        load_backbone_init(model, {"policy.rgb": str(tmp_path / "resnet.pt")})


def test_a_checkpoint_of_an_unregistered_model_names_the_missing_plugin(tmp_path) -> None:
    from adamml.engine.checkpoint import save_checkpoint
    from adamml.engine.instantiate import model_from_checkpoint

    model = adamml.create_model("test_adamml_rgb_audio", num_classes=3)
    state = {"model_name": "depth_adamml", "num_classes": 3, "model": model.state_dict()}
    path = save_checkpoint(state, tmp_path, "best.pt", update_last=False)
    with pytest.raises(CheckpointError, match="holds model 'depth_adamml'.*install the plugin"):
        model_from_checkpoint(path)
