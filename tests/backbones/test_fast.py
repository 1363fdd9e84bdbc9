"""The eval fast path of frame backbones: same outputs, rebuilt when weights change, chunked."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import adamml
from adamml.backbones import create_backbone
from adamml.backbones.base import _FAST
from adamml.backbones.fast import (
    ConvAct,
    FastPath,
    InferenceOptions,
    ResidualConvAct,
    fold_batchnorm,
    largest_activation_bytes,
    plain_forward,
    stage_activation_bytes,
    stage_chunk_sizes,
)
from adamml.errors import ConfigError
from adamml.precision import PRECISIONS, autocast

TINY_RGB = adamml.get_modality("rgb").replace(size=(32, 32), frames=4)
TINY_AUDIO = adamml.get_modality("audio").replace(size=(32, 32))


def _pair(name: str, modality, num_classes: int = 5) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    net = create_backbone(name, modality=modality, num_classes=num_classes)
    net.train()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        net(torch.randn(6, *modality.input_spec.shape) * 3 + 1)
    return net.eval(), torch.randn(7, *modality.input_spec.shape)


def _plain(net: nn.Module, x: torch.Tensor, features: bool = False) -> torch.Tensor:
    with torch.no_grad(), plain_forward():
        return net.forward_features(x) if features else net(x)


@pytest.mark.parametrize(
    "name,modality",
    [
        ("tiny_tsn", TINY_RGB),
        ("tiny_audio", TINY_AUDIO),
        ("tiny_policy", TINY_RGB),
        ("tiny_policy_resnet", TINY_RGB),
        ("tiny_resnet18_tsn", TINY_RGB),
        ("tiny_efficientnet_b3", TINY_RGB),
        ("tiny_efficientnet_b0", TINY_AUDIO),
        # the full-size narrow ResNet-10 policy option, on small inputs
        ("resnet10_narrow_policy", TINY_RGB),
        ("resnet10_narrow_audio_policy", TINY_AUDIO),
    ],
)
def test_fast_path_equals_plain_forward(name: str, modality) -> None:
    net, x = _pair(name, modality, num_classes=0 if "policy" in name else 5)
    with torch.inference_mode():
        fast, feats = net(x), net.forward_features(x)
    assert torch.allclose(fast, _plain(net, x), atol=1e-5)
    assert torch.allclose(feats, _plain(net, x, features=True), atol=1e-5)
    assert _FAST[net].folded > 0  # BatchNorm was folded into the convolutions


def _copy_modules(net: nn.Module) -> list[nn.Module]:
    (call,) = _FAST[net]._copies.values()
    return list(call.__self__.modules())


@pytest.mark.parametrize("fuse", [True, False])
def test_norm_activations_are_fused_into_the_convolutions(fuse: bool) -> None:
    """MobileNetV2's BatchNormAct2d(ReLU6) becomes one oneDNN call with its convolution, and a
    projection convolution (norm without activation) one without post-op; the output is the
    plain module's either way."""
    net, x = _pair("tiny_policy", TINY_RGB, num_classes=0)
    net.inference_options = net.inference_options.replace(fuse_act=fuse)
    with torch.inference_mode():
        out = net(x)
    fused = [m for m in _copy_modules(net) if isinstance(m, ConvAct)]
    assert (len(fused) > 0) is fuse
    post_ops = {(m.post_op, tuple(m.scalars)) for m in fused}
    assert post_ops == ({("hardtanh", (0.0, 6.0)), ("none", ())} if fuse else set())
    if fuse:  # every convolution is inside a ConvAct
        assert len([m for m in _copy_modules(net) if type(m) is nn.Conv2d]) == len(fused)
    assert torch.allclose(out, _plain(net, x), atol=1e-5)


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_packed_weights_follow_the_input_shape(layout: torch.memory_format) -> None:
    """A fused convolution packs its weight for each input shape it sees, keeps the last two,
    and gives the plain convolution's output for every shape (a weight packed for one batch
    size must not be used on another)."""
    conv = nn.Conv2d(8, 16, 3, padding=1, bias=True).eval()
    fused = ConvAct(conv, nn.ReLU()).to(memory_format=layout)
    with torch.inference_mode():
        for n in (4, 3, 4, 1, 2):
            x = torch.randn(n, 8, 10, 10).contiguous(memory_format=layout)
            torch.testing.assert_close(fused(x), torch.relu(conv(x)), atol=1e-5, rtol=1e-5)
            shapes = conv.__dict__["_adamml_packed"]["shapes"]
            assert len(shapes) <= 2 and tuple(x.shape) in shapes
        with torch.no_grad():  # a changed weight is packed anew
            conv.weight.mul_(2.0)
        x = torch.randn(2, 8, 10, 10).contiguous(memory_format=layout)
        torch.testing.assert_close(fused(x), torch.relu(conv(x)), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_activations_are_fused_by_default_in_float32_and_bfloat16(precision: str) -> None:
    """By default the copy applies the norms' activations inside the convolutions, in float32
    and in bfloat16 (where PyTorch's element-wise ReLU6 is slow), with the plain outputs."""
    net, x = _pair("tiny_policy", TINY_RGB, num_classes=0)
    with torch.inference_mode(), autocast(precision, "cpu"):
        out = net(x)
    fused = [m for m in _copy_modules(net) if isinstance(m, ConvAct)]
    assert fused and all(m.conv.weight.dtype == PRECISIONS[precision] for m in fused)
    with torch.no_grad(), plain_forward(), autocast(precision, "cpu"):
        plain = net(x)
    tol = 1e-5 if precision == "fp32" else 0.05 * float(plain.float().abs().max())
    assert torch.allclose(out.float(), plain.float(), atol=tol)


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_resnet_blocks_become_fused_convolutions(fuse: bool, precision: str) -> None:
    """With fuse_act (default) every plain ResNet block of the copy runs as oneDNN calls with
    the ReLUs and the residual add inside the convolutions; the output is the plain module's."""
    net, x = _pair("tiny_tsn", TINY_RGB)
    net.inference_options = net.inference_options.replace(fuse_act=fuse)
    with torch.inference_mode(), autocast(precision, "cpu"):
        out = net(x)
    blocks = [m for m in _copy_modules(net) if isinstance(m, ResidualConvAct)]
    assert (len(blocks) > 0) is fuse
    with torch.no_grad(), plain_forward(), autocast(precision, "cpu"):
        plain = net(x)
    tol = 1e-5 if precision == "fp32" else 0.05 * float(plain.float().abs().max())
    assert torch.allclose(out.float(), plain.float(), atol=tol)


def test_blocks_with_extra_layers_are_not_fused() -> None:
    """A block with squeeze-excitation is not a plain ResNet block: it keeps its own forward."""
    from timm.layers import SEModule
    from timm.models.resnet import BasicBlock

    block = BasicBlock(8, 8, attn_layer=SEModule).eval()
    fold_batchnorm(block, torch.randn(2, 8, 6, 6), fuse_act=True)
    assert not ResidualConvAct.fusable(block)
    plain = BasicBlock(8, 8).eval()
    fold_batchnorm(plain, torch.randn(2, 8, 6, 6), fuse_act=False)
    assert ResidualConvAct.fusable(plain)


@pytest.mark.parametrize(
    "field,value",
    [
        ("fuse_act", "auto"),
        ("pack_weights", 1),
        ("stage_chunks", "yes"),
        ("chunk_mb", 0),
        ("chunk_mb", "64"),
        ("chunk_mb", -1),
    ],
)
def test_bad_inference_options_are_config_errors(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        InferenceOptions(**{field: value})


@pytest.mark.parametrize(
    "act",
    [nn.ReLU(), nn.ReLU6(), nn.SiLU(), nn.Hardtanh(-1.0, 2.0)],
    ids=lambda a: type(a).__name__,
)
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_conv_act_equals_the_activation_after_the_convolution(act, layout) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 6, 3, stride=2, padding=1, groups=3).eval()
    fused = ConvAct(conv, act).to(memory_format=layout)
    x = torch.randn(2, 6, 9, 9).contiguous(memory_format=layout)
    with torch.no_grad():
        ref = act(conv(x))
        assert torch.allclose(fused(x), ref, atol=1e-5)
        # other dtypes run the two modules one after the other
        assert torch.allclose(fused.double()(x.double()), act(conv.double()(x.double())))


def test_conv_act_refuses_what_onednn_cannot_fuse() -> None:
    with pytest.raises(ValueError, match="cannot fuse Conv2d with GELU"):
        ConvAct(nn.Conv2d(2, 2, 3), nn.GELU())
    with pytest.raises(ValueError, match="cannot fuse"):
        ConvAct(nn.Conv2d(2, 2, 3, padding="same"), nn.ReLU())
    assert not ConvAct.fusable(nn.Conv2d(2, 2, 3, padding_mode="reflect"), nn.ReLU())


def test_chunks_give_the_same_result_and_training_is_untouched() -> None:
    net, x = _pair("tiny_tsn", TINY_RGB)
    whole = _plain(net, x)
    net.inference_options = InferenceOptions(chunk_mb=1e-3)  # one segment per call
    with torch.inference_mode():
        out = net(x)
        path = _FAST[net]
        assert path.chunk_size(net, x, net.inference_options) == 1
    assert torch.allclose(out, whole, atol=1e-5)
    net.train()  # training: the plain module with autograd, and the copies are dropped
    assert not _FAST[net]._copies
    y = net(x)
    assert y.requires_grad


def test_stage_chunks_give_the_same_result() -> None:
    """A budget that allows one segment in the first stages lets the late, narrow stages of
    MobileNetV2 take more segments per call; the output is the plain module's."""
    net, x = _pair("tiny_policy", TINY_RGB, num_classes=0)
    x = torch.cat([x, x.flip(0)])  # 14 segments
    sizes = stage_activation_bytes(net, x[:1])
    assert len(sizes) == len(net.plan) and all(big >= out > 0 for big, out in sizes)
    budget_mb = max(big for big, _ in sizes) / 2**20
    whole = _plain(net, x)
    for staged in (True, False):
        net.inference_options = InferenceOptions(chunk_mb=budget_mb, stage_chunks=staged)
        with torch.inference_mode():
            out = net(x)
        call = list(_FAST[net]._copies.values())[-1]  # the copy for these options
        chunks = call.__self__.stage_chunks
        if staged:
            assert chunks[0] == 1 and max(chunks) > 1
        else:
            assert chunks is None
        torch.testing.assert_close(out, whole, atol=1e-5, rtol=1e-5)


def test_stage_chunk_sizes_follow_the_budget() -> None:
    """Each stage's chunk keeps its largest activation within the budget, never exceeds a later
    stage's, and changes only after a narrow output; the outer chunk bounds the kept outputs."""
    mb = 2**20
    sizes = [(8 * mb, 8 * mb), (4 * mb, 4 * mb), (2 * mb, mb // 64), (mb // 8, mb // 64)]
    chunks, outer = stage_chunk_sizes(sizes, budget_bytes=8 * mb)
    assert chunks == (1, 1, 1, 64)  # 8 and 4 MiB outputs are too wide to keep: no change there
    assert outer == 64
    chunks, outer = stage_chunk_sizes([(mb, mb // 16), (mb // 64, mb // 64)], budget_bytes=mb)
    assert chunks == (1, 64) and outer == 64
    chunks, outer = stage_chunk_sizes([(mb, mb // 16), (1, 1)], budget_bytes=mb)
    assert chunks == (1, mb) and outer == 64  # 4 budgets of 1/16-budget outputs
    assert stage_chunk_sizes([(mb, mb)], budget_bytes=mb) == ((1,), 1)


def test_copy_is_rebuilt_when_weights_change() -> None:
    net, x = _pair("tiny_audio", TINY_AUDIO)
    with torch.inference_mode():
        before = net(x)
    with torch.no_grad():
        net.fc.weight.mul_(2.0)  # an in-place update, as an optimiser or load_state_dict does
    with torch.inference_mode():
        after = net(x)
    assert not torch.allclose(before, after)
    assert torch.allclose(after, _plain(net, x), atol=1e-5)


def test_grad_enabled_eval_and_disabled_option_use_the_plain_module() -> None:
    net, x = _pair("tiny_tsn", TINY_RGB)
    out = net(x)  # eval with autograd on (e.g. saliency): the real module, gradients flow
    out.sum().backward()
    assert net.fc.weight.grad is not None and net not in _FAST
    net.inference_options = net.inference_options.replace(enabled=False)
    with torch.inference_mode():
        net(x)
    assert net not in _FAST


def test_copies_stay_out_of_the_module() -> None:
    net, x = _pair("tiny_tsn", TINY_RGB)
    keys = set(net.state_dict())
    with torch.inference_mode():
        net(x)
    assert set(net.state_dict()) == keys
    assert all(p.requires_grad for p in net.parameters())


def test_bf16_copy_under_autocast() -> None:
    net, x = _pair("tiny_tsn", TINY_RGB)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), _plain(net, x), atol=0.05, rtol=0.05)


def test_fold_batchnorm_by_hand() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 1),
        nn.BatchNorm2d(4),
    )
    for bn in (net[1], net[4]):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 2)
        bn.bias.data.uniform_(-1, 1)
    net.eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        ref = net(x)
        assert fold_batchnorm(net, x) == 2
        assert torch.allclose(net(x), ref, atol=1e-5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())


def test_a_norm_that_reads_a_shared_tensor_is_not_folded() -> None:
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.bn = nn.BatchNorm2d(3)
            self.other = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return self.bn(y) + self.other(y)  # the conv's output is used twice

    net = Shared().eval()
    assert fold_batchnorm(net, torch.randn(1, 3, 4, 4)) == 0


def test_largest_activation_is_measured_without_compute() -> None:
    net = create_backbone("resnet50_tsn", modality="rgb", num_classes=3).eval()
    size = largest_activation_bytes(net, torch.randn(1, 8, 3, 224, 224))
    assert size == 8 * 64 * 112 * 112 * 4  # the stem's output, float32
    assert (
        FastPath().chunk_size(net, torch.zeros(10, 8, 3, 224, 224), InferenceOptions(chunk_mb=30))
        == 1
    )


def test_model_configure_inference_reaches_every_backbone() -> None:
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=3)
    model.configure_inference(chunk_mb=7)
    opts = [m.inference_options for m in model.modules() if hasattr(m, "inference_options")]
    assert len(opts) == 4 and all(o.chunk_mb == 7 for o in opts)


@pytest.mark.slow
def test_compiled_copy_compiles_once_per_power_of_two() -> None:
    from torch._dynamo.utils import counters

    net, _ = _pair("tiny_audio", TINY_AUDIO)
    net.inference_options = InferenceOptions(compile=True)
    graphs = []
    with torch.inference_mode():
        for n in (3, 4, 5, 8, 6):
            x = torch.randn(n, *TINY_AUDIO.input_spec.shape)
            assert torch.allclose(net(x), _plain(net, x), atol=1e-4)
            graphs.append(counters["stats"]["unique_graphs"])
    # 3 and 4 share the bucket 4; 5, 8 and 6 share the bucket 8
    assert graphs[1] == graphs[0] and graphs[2] == graphs[1] + 1 and graphs[4] == graphs[2]
