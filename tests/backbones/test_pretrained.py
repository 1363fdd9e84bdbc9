"""pretrained=True / "hf-hub:..." through timm's download and cache, offline (HF_HUB_OFFLINE=1).

A test never downloads: the hub cache is a temporary folder, empty or filled here with a fake
timm checkpoint in the layout huggingface_hub reads (``models--org--name/refs/main`` and
``snapshots/<rev>/{config.json, model.safetensors}``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch
from huggingface_hub import constants
from safetensors.torch import save_file

from adamml.backbones import create_backbone
from adamml.errors import ConfigError, WeightsUnavailableError


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face hub cache under a temporary HF_HOME, offline.

    huggingface_hub reads HF_HOME and HF_HUB_OFFLINE once, at import; the constants it reads
    at call time are patched as well as the environment."""
    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def write_fake_timm_repo(cache: Path, repo_id: str, arch: str) -> dict[str, torch.Tensor]:
    """A timm hub repo ``repo_id`` holding seeded random weights of ``arch`` (3 channels, no
    classifier) in the hub cache; returns those weights."""
    gen = torch.Generator().manual_seed(7)
    net = timm.create_model(arch, pretrained=False, num_classes=0)
    state = {k: torch.randn(v.shape, generator=gen) for k, v in net.state_dict().items()}
    state = {k: (v.abs() if "running_var" in k else v) for k, v in state.items()}
    folder = cache / f"models--{repo_id.replace('/', '--')}"
    rev = "0123456789abcdef0123456789abcdef01234567"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(rev)
    snap = folder / "snapshots" / rev
    snap.mkdir(parents=True)
    config = {"architecture": arch, "num_classes": 0, "pretrained_cfg": {"num_classes": 0}}
    (snap / "config.json").write_text(json.dumps(config))
    save_file({k: v.contiguous() for k, v in state.items()}, str(snap / "model.safetensors"))
    return state


def test_offline_empty_cache_is_one_clear_line(hub_cache) -> None:
    with pytest.raises(WeightsUnavailableError) as info:
        create_backbone("timm:resnet10t", modality="rgb", pretrained=True)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(hub_cache) in msg and "HF_HUB_OFFLINE" in msg and "HF_HOME" in msg
    assert "resnet10t" in msg and "local weight file" in msg
    assert isinstance(info.value, ConfigError)  # a configuration the user can change


def test_offline_hf_hub_id_not_cached(hub_cache) -> None:
    with pytest.raises(WeightsUnavailableError, match="hf-hub:someone/missing"):
        create_backbone("tiny_tsn", modality="rgb", pretrained="hf-hub:someone/missing")


def test_hf_hub_id_from_cache_with_flow_stem(hub_cache) -> None:
    state = write_fake_timm_repo(hub_cache, "adamml-test/tiny-resnet", "adamml_tiny_resnet")
    rgb = create_backbone(
        "tiny_tsn", modality="rgb", num_classes=4, pretrained="hf-hub:adamml-test/tiny-resnet"
    )
    assert torch.equal(rgb.conv1.weight, state["conv1.weight"])
    assert torch.equal(rgb.layer4[0].conv2.weight, state["layer4.0.conv2.weight"])
    flow = create_backbone("tiny_tsn", modality="flow", pretrained="hf-hub:adamml-test/tiny-resnet")
    # the reference's stem adaptation, as for a local file: RGB mean copied to 10 channels
    want = state["conv1.weight"].mean(dim=1, keepdim=True).expand(-1, 10, -1, -1)
    assert torch.equal(flow.conv1.weight, want)
    assert torch.equal(flow.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])


def test_pretrained_true_without_timm_weights() -> None:
    with pytest.raises(ConfigError, match="timm has no pretrained weights"):
        create_backbone("tiny_policy", modality="rgb", pretrained=True)
    with pytest.raises(ConfigError, match="must be False, True"):
        create_backbone("tiny_policy", modality="rgb", pretrained=3)


def test_timm_model_names_the_default_weights() -> None:
    assert create_backbone("timm:resnet10t", modality="audio").timm_model == "resnet10t.c3_in1k"
    assert create_backbone("tiny_tsn", modality="rgb").timm_model == "adamml_tiny_resnet"


# -- create_model: one value for every part, or a per-part dict -------------------------------


def test_create_model_hf_hub_weights_reach_backbone_and_policy_extractor(hub_cache) -> None:
    import adamml

    res = write_fake_timm_repo(hub_cache, "adamml-test/tiny-resnet", "adamml_tiny_resnet")
    pol = write_fake_timm_repo(
        hub_cache, "adamml-test/tiny-resnet-policy", "adamml_tiny_resnet_policy"
    )
    mob = write_fake_timm_repo(hub_cache, "adamml-test/tiny-mobilenet", "adamml_tiny_mobilenetv2")
    model = adamml.create_model(
        "test_adamml_rgb_audio",
        num_classes=3,
        pretrained={
            "rgb": "hf-hub:adamml-test/tiny-resnet",
            "policy.rgb": "hf-hub:adamml-test/tiny-resnet-policy",
            "policy.audio": "hf-hub:adamml-test/tiny-mobilenet",
        },
    )
    rgb, policy_rgb = model.part("rgb"), model.part("policy.rgb")
    assert torch.equal(rgb.layer2[0].conv1.weight, res["layer2.0.conv1.weight"])
    assert torch.equal(policy_rgb.layer4[0].conv2.weight, pol["layer4.0.conv2.weight"])
    audio_policy = model.part("policy.audio")
    assert torch.equal(audio_policy.blocks[6][0].conv_pw.weight, mob["blocks.6.0.conv_pw.weight"])
    # parts left out of the dict start random
    assert not torch.equal(model.part("audio").conv_head.weight, mob["conv_head.weight"])


def test_create_model_pretrained_true_for_every_part(monkeypatch) -> None:
    """pretrained=True: each part gets timm's weights for its own architecture (the loader
    adamml calls, patched to return known tensors), the audio stems adapted to 1 channel."""
    import adamml
    from adamml.backbones import pretrained as module

    seen: list[str] = []

    def fake_timm_state(name: str) -> dict[str, torch.Tensor]:
        seen.append(name)
        net = timm.create_model(name, pretrained=False, num_classes=0)
        return {k: torch.full_like(v, 0.25) for k, v in net.state_dict().items()}

    monkeypatch.setattr(module, "timm_pretrained_state", fake_timm_state)
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=3, pretrained=True)
    assert sorted(seen) == [
        *["adamml_tiny_mobilenetv2"] * 2,
        "adamml_tiny_resnet",
        "adamml_tiny_resnet_policy",
    ]
    for part in model.part_names:
        module_ = model.part(part)
        for key, value in module_.state_dict().items():
            if key.startswith("fc.") or "num_batches_tracked" in key:
                continue
            assert torch.all(value == 0.25), (part, key)
    assert model.part("audio").conv_stem.weight.shape[1] == 1


def test_create_model_per_part_dict_and_unknown_part(tmp_path) -> None:
    import adamml

    src = create_backbone("tiny_audio", modality="audio", num_classes=3)
    torch.save(src.state_dict(), tmp_path / "audio.pth")
    model = adamml.create_model(
        "test_adamml_rgb_audio", num_classes=3, pretrained={"audio": tmp_path / "audio.pth"}
    )
    assert torch.equal(model.part("audio").conv_stem.weight, src.conv_stem.weight)
    with pytest.raises(ConfigError, match=r"'policy\.depth'.*parts are \['rgb', 'audio'"):
        adamml.create_model("test_adamml_rgb_audio", num_classes=3, pretrained={"policy.depth": 1})
    # a model without a learned policy has no policy.<m> parts
    with pytest.raises(ConfigError, match="not parts of this model"):
        adamml.create_model("test_fusion_rgb_audio", num_classes=3, pretrained={"policy.rgb": 1})


def test_pretrained_true_reads_timms_default_weights_from_the_cache(hub_cache) -> None:
    """The whole path of pretrained=True, no patching: timm resolves resnet10t's default tag
    to the hub repo timm/resnet10t.c3_in1k and reads it from the (fake) cache."""
    state = write_fake_timm_repo(hub_cache, "timm/resnet10t.c3_in1k", "resnet10t")
    audio = create_backbone("timm:resnet10t", modality="audio", pretrained=True)
    stem = "conv1.0.weight"  # resnet10t's deep stem
    assert torch.equal(audio.net.conv1[0].weight, state[stem].mean(dim=1, keepdim=True))
    assert torch.equal(audio.net.layer4[0].conv2.weight, state["layer4.0.conv2.weight"])
