"""Backbone contract, temporal pooling, weights and the tiny models' cost proportions."""

from __future__ import annotations

import pytest
import torch

import adamml
from adamml.backbones import create_backbone, list_backbones, temporal_max_pool
from adamml.errors import CheckpointError, ConfigError, ShapeError, UnknownBackboneError
from adamml.modalities import get_modality

RGB = get_modality("rgb").replace(frames=4, size=(32, 32), policy_size=(24, 24))
FLOW = get_modality("flow").replace(frames=4, size=(32, 32), policy_size=(24, 24))
AUDIO = get_modality("audio").replace(size=(32, 32))


def test_registry_lists_builtins() -> None:
    names = list_backbones()
    for n in (
        "resnet50_tsn",
        "resnet18_tsn",
        "mobilenetv2_audio",
        "mobilenetv2_policy",
        "mobilenetv2_audio_policy",
        "efficientnet_b0",
        "efficientnet_b3",
        "tiny_tsn",
        "tiny_audio",
        "tiny_policy",
        "tiny_policy_resnet",
        "tiny_audio_policy",
    ):
        assert n in names
    assert adamml.list_backbones("tiny_*") == [
        "tiny_audio",
        "tiny_audio_policy",
        "tiny_efficientnet_b0",
        "tiny_efficientnet_b3",
        "tiny_policy",
        "tiny_policy_resnet",
        "tiny_resnet18_tsn",
        "tiny_tsn",
    ]


@pytest.mark.parametrize(
    "name,mod,shape,k",
    [
        ("tiny_tsn", RGB, (4, 3, 32, 32), 5),
        ("tiny_tsn", FLOW, (4, 10, 32, 32), 5),
        ("tiny_audio", AUDIO, (1, 1, 32, 32), 5),
        ("tiny_policy", RGB, (2, 3, 24, 24), 0),
        ("tiny_policy_resnet", RGB, (2, 3, 24, 24), 0),
        ("tiny_audio_policy", AUDIO, (1, 1, 32, 32), 0),
        ("timm:test_efficientnet", RGB, (4, 3, 32, 32), 3),
    ],
)
@pytest.mark.parametrize("n", [1, 3])
def test_contract_shapes(name: str, mod, shape, k: int, n: int) -> None:
    bb = create_backbone(name, modality=mod, num_classes=k).eval()
    x = torch.randn(n, *shape)
    out = bb(x)
    d = bb.num_features
    assert out.shape == (n, k if k else d)
    assert bb.forward_features(x).shape == (n, d)
    assert bb.in_chans == shape[1] and bb.num_classes == k
    assert torch.allclose(bb.forward_head(bb.forward_features(x)), out, atol=1e-6)


def test_every_parameter_gets_a_gradient() -> None:
    bb = create_backbone("tiny_tsn", modality=RGB, num_classes=4).train()
    bb(torch.randn(6, 4, 3, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in bb.parameters())


def test_eval_is_deterministic() -> None:
    bb = create_backbone("tiny_audio", modality=AUDIO, num_classes=4).eval()
    x = torch.randn(2, 1, 1, 32, 32)
    assert torch.equal(bb(x), bb(x))


def test_temporal_max_pool_by_hand() -> None:
    x = torch.arange(8.0).view(8, 1, 1, 1)  # one clip, frames 0..7
    y, t = temporal_max_pool(x, 8)
    assert t == 4 and y.flatten().tolist() == [1.0, 3.0, 5.0, 7.0]
    y, t = temporal_max_pool(torch.randn(6, 2, 3, 3), 1)
    assert t == 1 and y.shape == (6, 2, 3, 3)


def _max_pool3d_reference(x: torch.Tensor, frames: int) -> torch.Tensor:
    n = x.shape[0] // frames
    y = x.reshape(n, frames, *x.shape[1:]).transpose(1, 2)  # (n, c, t, h, w)
    y = torch.nn.functional.max_pool3d(y, (3, 1, 1), (2, 1, 1), (1, 0, 0))
    return y.transpose(1, 2).reshape(-1, *x.shape[1:])


@pytest.mark.parametrize("frames", [2, 3, 4, 5, 7, 8])
@pytest.mark.parametrize("channels_last", [False, True])
def test_temporal_max_pool_without_autograd_equals_max_pool3d(
    frames: int, channels_last: bool
) -> None:
    """Eval runs two element-wise maxima instead of max_pool3d: the same values, exactly, in
    the input's memory format; training keeps max_pool3d and its gradient."""
    x = torch.randn(3 * frames, 5, 4, 6)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    expected = _max_pool3d_reference(x, frames)
    with torch.inference_mode():
        y, t = temporal_max_pool(x, frames)
    assert t == (frames - 1) // 2 + 1
    assert torch.equal(y, expected)
    assert y.is_contiguous(memory_format=torch.channels_last) is channels_last
    leaf = x.clone().requires_grad_()
    y2, _ = temporal_max_pool(leaf, frames)
    assert torch.equal(y2.detach(), expected)
    y2.sum().backward()
    assert leaf.grad is not None and int(leaf.grad.sum()) == y2.numel()


@pytest.mark.parametrize("frames", [3, 8])
def test_temporal_max_pool_compiles_in_one_graph(frames: int) -> None:
    x = torch.randn(2 * frames, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    pool = torch.compile(lambda z: temporal_max_pool(z, frames)[0], fullgraph=True)
    with torch.inference_mode():
        assert torch.equal(pool(x), _max_pool3d_reference(x, frames))


def test_temporal_pools_reduce_frames_and_can_be_turned_off() -> None:
    pooled = create_backbone("tiny_tsn", modality=RGB).eval()
    flat = create_backbone("tiny_tsn", modality=RGB, temporal_pool=False).eval()
    flat.load_state_dict(pooled.state_dict())
    x = torch.randn(2, 4, 3, 32, 32)
    assert not torch.allclose(pooled(x), flat(x))
    # with identical frames max-pooling over time changes nothing
    same = x[:, :1].expand(-1, 4, -1, -1, -1)
    assert torch.allclose(pooled(same), flat(same), atol=1e-5)


def test_resnet_keys_are_timm_and_reference_names() -> None:
    bb = create_backbone("resnet18_tsn", modality="rgb", num_classes=7)
    keys = list(bb.state_dict())
    assert keys[0] == "conv1.weight" and keys[-2:] == ["fc.weight", "fc.bias"]
    assert any(k.startswith("layer4.") for k in keys)


def test_errors() -> None:
    with pytest.raises(UnknownBackboneError, match="did you mean"):
        create_backbone("resnet50_tsm", modality="rgb")
    with pytest.raises(ConfigError, match="does not take"):
        create_backbone("tiny_tsn", modality=RGB, widht=3)
    with pytest.raises(ConfigError, match="timm has no pretrained weights"):
        create_backbone("tiny_tsn", modality=RGB, pretrained=True)
    with pytest.raises(ShapeError, match=r"\(N, T, C, H, W\)"):
        create_backbone("tiny_tsn", modality=RGB)(torch.randn(2, 3, 32, 32))


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_pretrained_file_mean_stem(tmp_path, fmt: str) -> None:
    src = create_backbone("tiny_tsn", modality=RGB, num_classes=9)
    path = tmp_path / f"w.{fmt}"
    if fmt == "pth":
        torch.save({"state_dict": src.state_dict()}, path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    flow = create_backbone("tiny_tsn", modality=FLOW, num_classes=5, pretrained=path)
    w = src.conv1.weight.mean(dim=1, keepdim=True).expand(-1, 10, -1, -1)
    assert torch.equal(flow.conv1.weight, w)  # reference: mean over RGB, no rescaling
    assert torch.equal(flow.layer1[0].conv1.weight, src.layer1[0].conv1.weight)
    assert flow.fc.weight.shape == (5, flow.num_features)  # classifier of another size dropped
    timm_init = create_backbone("tiny_tsn", modality=FLOW, pretrained=path, stem_init="timm")
    # timm repeats the RGB kernel and rescales by 3 / C
    assert torch.allclose(timm_init.conv1.weight[:, :3], src.conv1.weight * 0.3, atol=1e-6)


def test_pretrained_file_that_does_not_fit(tmp_path) -> None:
    torch.save(create_backbone("tiny_audio", modality=AUDIO).state_dict(), tmp_path / "a.pth")
    with pytest.raises(CheckpointError, match="does not fit"):
        create_backbone("tiny_tsn", modality=RGB, pretrained=tmp_path / "a.pth")
    with pytest.raises(CheckpointError, match="does not exist"):
        create_backbone("tiny_tsn", modality=RGB, pretrained=tmp_path / "missing.pth")
