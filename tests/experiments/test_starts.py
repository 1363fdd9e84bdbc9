"""Where table rows start: --pretrained imagenet|none|PATH and Table 6's --init-k400 DIR."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from adamml.experiments import tables

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _spec(name: str) -> tables.TableSpec:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name].SPEC


def test_pretrained_none_and_a_folder_of_part_files(tmp_path, capsys) -> None:
    spec = _spec("table1_rgb_audio")
    configs = tables.main(spec, ["--dry-run", "--pretrained", "none"])["configs"]
    assert all("pretrained" not in c["model_args"] for c in configs.values())
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "rgb.pth").touch()
    (folder / "policy.audio.safetensors").touch()
    configs = tables.main(spec, ["--dry-run", "--pretrained", str(folder)])["configs"]
    assert configs["unimodal_rgb"]["model_args"]["pretrained"] == {"rgb": str(folder / "rgb.pth")}
    assert "pretrained" not in configs["unimodal_audio"]["model_args"]  # no audio.pth: random
    adamml = configs["adamml_rgb_audio"]
    assert adamml["model_args"]["pretrained"] == {
        "policy.audio": str(folder / "policy.audio.safetensors")
    }
    out = capsys.readouterr().out
    assert f"policy.audio <- file {folder / 'policy.audio.safetensors'}" in out
    assert "policy.rgb <- random" in out
    with pytest.raises(SystemExit, match="no such file"):
        tables.main(spec, ["--dry-run", "--pretrained", str(tmp_path / "missing.pth")])


def test_dry_run_shows_the_imagenet_weights_of_each_part(capsys) -> None:
    tables.main(_spec("table1_rgb_audio"), ["--dry-run"])
    out = capsys.readouterr().out
    assert "# starts: rgb <- timm resnet50.a1_in1k (ImageNet)" in out
    assert "policy.audio <- timm mobilenetv2_100.ra_in1k (ImageNet)" in out
    assert "rgb <- init OUT/unimodal_rgb/best.pt" in out


def test_table6_init_k400(tmp_path) -> None:
    spec = _spec("table6_backbones")
    names = [
        "rgb-resnet18_tsn.pth",
        "audio-resnet18_tsn.pth",
        "rgb-resnet50_tsn.pth",
        "audio-mobilenetv2_audio.pth",
        "rgb-efficientnet_b3.safetensors",
    ]
    for name in names:
        (tmp_path / name).touch()
    with pytest.raises(SystemExit, match=r"no audio-efficientnet_b0\.pth"):
        tables.main(spec, ["--dry-run", "--init-k400", str(tmp_path)])
    (tmp_path / "audio-efficientnet_b0.pt").touch()
    configs = tables.main(spec, ["--dry-run", "--init-k400", str(tmp_path)])["configs"]
    uni = {k: c["model_args"]["pretrained"] for k, c in configs.items() if "unimodal" in k}
    assert uni["unimodal_rgb_efficientnet"] == {"rgb": str(tmp_path / names[-1])}
    assert uni["unimodal_audio"] == {"audio": str(tmp_path / "audio-mobilenetv2_audio.pth")}
    # the multimodal rows: backbones from the unimodal runs, policy extractors from ImageNet
    assert configs["adamml_rgb_audio"]["model_args"]["pretrained"] == {
        "policy.rgb": True,
        "policy.audio": True,
    }


def test_a_model_without_a_recipe_starts_as_its_factory_builds_it() -> None:
    import argparse

    from adamml import MODELS
    from adamml.experiments.starts import describe_starts, start_weights

    MODELS.register("test_starts_factory", lambda num_classes, **kw: None)
    try:
        args = argparse.Namespace(mini=False, pretrained=None, init_k400=None)
        assert start_weights("test_starts_factory", {}, {}, unimodal=False, args=args) == {}
        raw = {"model": "test_starts_factory", "model_args": {}, "init": {}}
        assert describe_starts(raw) == "as the model's factory builds it"
    finally:
        MODELS.unregister("test_starts_factory")
