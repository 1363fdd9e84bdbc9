"""Initialising a model's backbones and policy feature extractors from unimodal checkpoints."""

from __future__ import annotations

import pytest
import torch

import adamml
from adamml.engine.instantiate import load_backbone_init
from adamml.errors import CheckpointError, ConfigError


def test_policy_extractors_initialise_from_unimodal_models(tmp_path) -> None:
    torch.manual_seed(0)
    rgb = adamml.create_model(
        "test_unimodal_rgb", num_classes=6, backbones={"rgb": "tiny_policy_resnet"}
    )
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


def _tiny_training(model: str, **model_args) -> dict:
    return {
        "model": model,
        "model_args": model_args,
        "num_classes": 3,
        "data": {"train": "synthetic:6", "segments_train": 2, "segments_eval": 2},
        "schedule": {"warmup_epochs": 1, "joint_epochs": 0, "finetune_epochs": 0},
        "batch_size": 3,
        "seed": 0,
        "pretrain": "none",
    }


def test_a_checkpoint_records_and_names_the_plugins_it_needs(tmp_path) -> None:
    """A plugin backbone in a built-in model: the training checkpoint records its distribution,
    and loading it where the plugin is gone names the backbone and the distribution."""
    from plugin_helpers import installed, write_distribution

    from adamml.engine import TrainConfig, Trainer
    from adamml.engine.checkpoint import load_checkpoint
    from adamml.engine.instantiate import model_from_checkpoint

    folder = write_distribution(tmp_path / "site")
    cfg = TrainConfig.from_dict(_tiny_training("test_unimodal_rgb", backbones={"rgb": "depth_net"}))
    with installed(folder):
        Trainer(cfg, tmp_path / "run", show_progress=False).run()
        ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
        assert [(p["kind"], p["name"], p["distribution"]) for p in ckpt["plugins"]] == [
            ("backbone", "depth_net", "adamml-depth 0.1")
        ]
        model, _ = model_from_checkpoint(tmp_path / "run" / "last.pt")  # loads while installed
        assert type(model.router.backbone("rgb")).__name__ == "DepthNet"
    with pytest.raises(
        CheckpointError,
        match=r"backbone 'depth_net' comes from the plugin distribution adamml-depth 0\.1, "
        r"which is not installed here: install the plugin that provides it "
        r"\(pip install adamml-depth\)",
    ):
        model_from_checkpoint(tmp_path / "run" / "last.pt")


def test_a_missing_plugin_modality_is_named_with_its_distribution(tmp_path) -> None:
    """A model registered at run time on a plugin modality: both are named, each with what to
    do (install the plugin; register the model again)."""
    from plugin_helpers import installed, write_distribution

    from adamml.engine.checkpoint import save_checkpoint
    from adamml.engine.instantiate import model_from_checkpoint, plugin_record
    from adamml.zoo import ModelRecipe, register_model

    folder = write_distribution(tmp_path / "site")
    with installed(folder):
        register_model("my_depth", ModelRecipe(("rgb", "depth"), policy="all"))
        try:
            model = adamml.create_model("test_my_depth", num_classes=3)
            state = {
                "model_name": "test_my_depth",
                "num_classes": 3,
                "model": model.state_dict(),
                "plugins": plugin_record(model, "test_my_depth"),
            }
        finally:
            adamml.MODELS.unregister("my_depth")
            adamml.MODELS.unregister("test_my_depth")
    path = save_checkpoint(state, tmp_path, "best.pt", update_last=False)
    with pytest.raises(CheckpointError) as err:
        model_from_checkpoint(path)
    message = str(err.value)
    assert (
        "modality 'depth' and backbone 'depth_net' come from the plugin distribution "
        "adamml-depth 0.1, which is not installed here: install the plugin that provides them"
    ) in message
    assert "model 'test_my_depth' was registered at run time" in message


def test_an_unrecorded_missing_plugin_component_is_named(tmp_path) -> None:
    """A checkpoint written before the plugins were recorded: the build's unknown name says
    which component is missing."""
    from adamml.engine.checkpoint import save_checkpoint
    from adamml.engine.instantiate import model_from_checkpoint

    model = adamml.create_model("test_unimodal_rgb", num_classes=3)
    state = {
        "model_name": "test_unimodal_rgb",
        "model_args": {"backbones": {"rgb": "depth_net"}},
        "num_classes": 3,
        "model": model.state_dict(),
    }
    path = save_checkpoint(state, tmp_path, "best.pt", update_last=False)
    with pytest.raises(
        CheckpointError,
        match="holds model 'test_unimodal_rgb', which needs the backbone 'depth_net', not "
        "registered here: install the plugin that provides it",
    ):
        model_from_checkpoint(path)


def test_a_part_model_needs_the_plugins_of_its_parent() -> None:
    """A pre-training stage's checkpoint rebuilds the parent model, so it records what the
    parent was built from."""
    from adamml.engine.instantiate import plugin_record
    from adamml.engine.recipe import PART_MODEL, part_model

    part = part_model(3, parent="test_adamml_rgb_audio", part="policy.rgb")
    assert part.components["adamml.models"] == ("test_adamml_rgb_audio",)
    assert "tiny_policy_resnet" in part.components["adamml.backbones"]
    assert plugin_record(part, PART_MODEL) == []  # all built in


def test_adamml_train_starts_from_model_args_pretrained(tmp_path) -> None:
    """``model_args.pretrained`` in a config file reaches create_model through ``adamml
    train``; the checkpoint is rebuilt without fetching that start again (file gone)."""
    import yaml

    from adamml.cli import main
    from adamml.engine.checkpoint import load_checkpoint
    from adamml.engine.instantiate import model_from_checkpoint

    src = adamml.create_model(
        "test_unimodal_audio", num_classes=3, backbones={"audio": "tiny_audio_policy"}
    )
    weights = tmp_path / "audio_policy.pth"
    torch.save(src.router.backbone("audio").state_dict(), weights)
    raw = _tiny_training("test_adamml_rgb_audio", pretrained={"policy.audio": str(weights)})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    args = ["train", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run")]
    assert main([*args, "--quiet"]) == 0
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["model_args"]["pretrained"] == {"policy.audio": str(weights)}
    got = {
        k[len("policy.backbones.audio.") :]: v
        for k, v in ckpt["model"].items()
        if k.startswith("policy.backbones.audio.")
    }
    want = src.router.backbone("audio").state_dict()
    # the warm-up stage keeps the policy fixed: its audio extractor still holds the file's weights
    assert got and all(torch.equal(got[k], want[k]) for k in got)
    weights.unlink()
    model_from_checkpoint(tmp_path / "run" / "last.pt")  # the file is not needed any more
