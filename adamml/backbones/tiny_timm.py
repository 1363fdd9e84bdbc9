"""Tiny timm architectures behind the ``test_*`` models (registered in timm's own registry),
and one narrow full-size ResNet for a faster policy.

They keep the paper's per-segment cost proportions at the tiny input sizes (visual 4x32x32,
policy view 2x24x24, audio 1x32x32; see ``docs/cost.md``):

* ``adamml_tiny_resnet``: timm ``ResNet`` with ``BasicBlock`` layers ``[1, 1, 1, 1]``, a 12-wide
  3x3 stem (the stem is the only part that grows with C: 10-channel flow costs 1.15x RGB and
  15-channel RGB difference 1.26x, as in ResNet-50) and stages of 28, 48, 96, 192 channels.
  (A 2-wide 7x7 stem had the same proportions, but two channels could not carry colour and
  shape: the RGB model stalled near 55 % on SyntheticAV where this one reaches 85 %.)
* ``adamml_tiny_mobilenetv2``: timm ``EfficientNet`` with MobileNetV2's seven stages (one
  block each, 8-64 wide), ReLU6, a 4-wide stem and a 128-wide head: ~2.4 % of the tiny RGB
  network on 1x32x32 (audio) and ~2.6 % on the 2x24x24 policy view.
* ``adamml_tiny_resnet_policy``: ``adamml_tiny_resnet`` narrowed to a 4-wide stem and stages
  of 8, 12, 24, 48 channels: ~3.5 % of the tiny RGB network on the 2x24x24 policy view (the
  paper's MobileNetV2 policy view costs 2.7 % of its ResNet-50). It is the visual policy
  extractor of the ``test_*`` models because the tiny MobileNetV2 does not learn from that
  view: trained as a 6- or 12-class classifier on SyntheticAV's 24x24 policy views (20
  epochs, Adam 3e-3, 400 videos), the MobileNetV2 stayed at 12-19 % top-1 (chance 8-17 %) on
  four datasets where this network reached 33-57 %, and a wider MobileNetV2 (16-wide stem,
  stages up to 96 channels) did no better (20 %); see ``benchmarks/policy_extractor.py`` and
  ``docs/components/backbones.md``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from timm.models import build_model_with_cfg, register_model
from timm.models._efficientnet_builder import decode_arch_def, resolve_act_layer, round_channels
from timm.models.efficientnet import EfficientNet
from timm.models.resnet import BasicBlock, ResNet
from torch import nn

__all__ = [
    "TinyResNet",
    "adamml_tiny_resnet18",
    "adamml_tiny_efficientnet_b0",
    "adamml_tiny_efficientnet_b3",
    "adamml_tiny_resnet",
    "adamml_tiny_resnet_policy",
    "adamml_tiny_mobilenetv2",
    "adamml_resnet10_narrow",
    "TINY_MOBILENET_ARCH",
]

# MobileNetV2's (t, c, n, s) plan with n = 1 and narrow c; stage 3 and 5 get the temporal pools
TINY_MOBILENET_ARCH = [
    ["ds_r1_k3_s1_c8"],
    ["ir_r1_k3_s2_e1_c8"],
    ["ir_r1_k3_s2_e2_c16"],
    ["ir_r1_k3_s2_e2_c16"],
    ["ir_r1_k3_s1_e2_c24"],
    ["ir_r1_k3_s2_e2_c32"],
    ["ir_r1_k3_s1_e2_c64"],
]


class TinyResNet(ResNet):
    """timm ``ResNet`` whose stem conv is ``stem_width`` wide with a ``stem_kernel`` kernel
    (timm fixes the plain stem at 64 channels, 7x7).

    Only the stem changes: names and the rest of the network are timm's.
    """

    def __init__(
        self, *, stem_width: int = 12, stem_kernel: int = 3, in_chans: int = 3, **kwargs: Any
    ) -> None:
        super().__init__(in_chans=in_chans, **kwargs)
        block = self.layer1[0]
        self.conv1 = nn.Conv2d(
            in_chans,
            stem_width,
            kernel_size=stem_kernel,
            stride=2,
            padding=stem_kernel // 2,
            bias=False,
        )
        self.bn1 = nn.BatchNorm2d(stem_width)
        block.conv1 = nn.Conv2d(
            stem_width, block.conv1.out_channels, kernel_size=3, padding=1, bias=False
        )
        block.downsample[0] = nn.Conv2d(
            stem_width, block.downsample[0].out_channels, kernel_size=1, bias=False
        )
        self.feature_info[0]["num_chs"] = stem_width
        for m in (self.conv1, block.conv1, block.downsample[0]):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


_CFG: dict[str, Any] = {
    "url": "",
    "num_classes": 0,
    "input_size": (3, 32, 32),
    "first_conv": "",
    "classifier": "fc",
}


def _tiny_resnet(
    name: str,
    stem_width: int,
    channels: tuple[int, ...],
    pretrained: bool,
    layers: tuple[int, ...] = (1, 1, 1, 1),
    stem_kernel: int = 3,
    **kwargs: Any,
) -> TinyResNet:
    """A `TinyResNet` with ``layers`` BasicBlocks per stage, built and registered through timm."""
    args: dict[str, Any] = dict(
        block=BasicBlock,
        layers=layers,
        stem_width=stem_width,
        stem_kernel=stem_kernel,
        channels=channels,
        zero_init_last=False,
    )
    cfg = dict(_CFG, first_conv="conv1", classifier="fc")
    kwargs["pretrained_cfg"] = kwargs.get("pretrained_cfg") or cfg
    return build_model_with_cfg(TinyResNet, name, pretrained, **dict(args, **kwargs))


@register_model
def adamml_tiny_resnet(pretrained: bool = False, **kwargs: Any) -> TinyResNet:
    """Tiny timm ResNet (BasicBlock x [1, 1, 1, 1]) for the ``test_*`` models."""
    return _tiny_resnet("adamml_tiny_resnet", 12, (28, 48, 96, 192), pretrained, **kwargs)


@register_model
def adamml_tiny_resnet_policy(pretrained: bool = False, **kwargs: Any) -> TinyResNet:
    """Narrow tiny timm ResNet (4-wide stem, stages 8-48) for the ``test_*`` visual policies."""
    return _tiny_resnet("adamml_tiny_resnet_policy", 4, (8, 12, 24, 48), pretrained, **kwargs)


@register_model
def adamml_resnet10_narrow(pretrained: bool = False, **kwargs: Any) -> TinyResNet:
    """Full-size narrow ResNet-10 (32-wide 7x7 stem, stages 32-256): the faster policy option."""
    return _tiny_resnet(
        "adamml_resnet10_narrow", 32, (32, 64, 128, 256), pretrained, stem_kernel=7, **kwargs
    )


@register_model
def adamml_tiny_resnet18(pretrained: bool = False, **kwargs: Any) -> TinyResNet:
    """ResNet-18's depth (BasicBlock x [2, 2, 2, 2]) at the tiny ResNet's widths: the ``--mini``
    stand-in for ResNet-18 in ``examples/table6_backbones.py``."""
    return _tiny_resnet(
        "adamml_tiny_resnet18", 12, (28, 48, 96, 192), pretrained, layers=(2, 2, 2, 2), **kwargs
    )


# EfficientNet-B0's seven stages (timm's arch definition: kernel, expansion, squeeze-excite)
EFFICIENTNET_B0_ARCH = [
    ["ds_r1_k3_s1_e1_c16_se0.25"],
    ["ir_r2_k3_s2_e6_c24_se0.25"],
    ["ir_r2_k5_s2_e6_c40_se0.25"],
    ["ir_r3_k3_s2_e6_c80_se0.25"],
    ["ir_r3_k5_s1_e6_c112_se0.25"],
    ["ir_r4_k5_s2_e6_c192_se0.25"],
    ["ir_r1_k3_s1_e6_c320_se0.25"],
]


def _tiny_efficientnet(
    name: str, width: float, depth: float, pretrained: bool, **kwargs: Any
) -> EfficientNet:
    """EfficientNet-B0's architecture scaled by ``width`` (channels) and ``depth`` (blocks),
    with SiLU, as timm scales B0 into B1-B7."""
    round_chs = partial(round_channels, multiplier=width, divisor=4)
    args: dict[str, Any] = dict(
        block_args=decode_arch_def(EFFICIENTNET_B0_ARCH, depth),
        num_features=round_chs(1280),
        stem_size=8,
        round_chs_fn=round_chs,
        norm_layer=partial(nn.BatchNorm2d),
        act_layer=resolve_act_layer({}, "swish"),
    )
    cfg = dict(_CFG, first_conv="conv_stem", classifier="classifier")
    kwargs["pretrained_cfg"] = kwargs.get("pretrained_cfg") or cfg
    return build_model_with_cfg(EfficientNet, name, pretrained, **dict(args, **kwargs))


@register_model
def adamml_tiny_efficientnet_b0(pretrained: bool = False, **kwargs: Any) -> EfficientNet:
    """EfficientNet-B0 at a quarter of its width and a third of its depth: the ``--mini``
    stand-in for EfficientNet-B0 (audio) in ``examples/table6_backbones.py``."""
    return _tiny_efficientnet("adamml_tiny_efficientnet_b0", 0.25, 0.34, pretrained, **kwargs)


@register_model
def adamml_tiny_efficientnet_b3(pretrained: bool = False, **kwargs: Any) -> EfficientNet:
    """The B0 stand-in scaled as B3 scales B0 (width x1.2, depth x1.4): the ``--mini`` stand-in
    for EfficientNet-B3 (RGB) in ``examples/table6_backbones.py``."""
    return _tiny_efficientnet("adamml_tiny_efficientnet_b3", 0.3, 0.48, pretrained, **kwargs)


@register_model
def adamml_tiny_mobilenetv2(pretrained: bool = False, **kwargs: Any) -> EfficientNet:
    """Tiny timm MobileNetV2 (seven one-block stages, ReLU6) for the ``test_*`` models."""
    args: dict[str, Any] = dict(
        block_args=decode_arch_def(TINY_MOBILENET_ARCH),
        num_features=128,
        stem_size=4,
        fix_stem=True,
        round_chs_fn=partial(round_channels, multiplier=1.0),
        norm_layer=partial(nn.BatchNorm2d),
        act_layer=resolve_act_layer({}, "relu6"),
    )
    cfg = dict(_CFG, first_conv="conv_stem", classifier="classifier")
    kwargs["pretrained_cfg"] = kwargs.get("pretrained_cfg") or cfg
    return build_model_with_cfg(
        EfficientNet, "adamml_tiny_mobilenetv2", pretrained, **dict(args, **kwargs)
    )
