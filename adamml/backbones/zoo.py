"""The registered backbones: TSN ResNets, MobileNetV2 for audio and the policy, EfficientNets.

Every builder takes ``modality`` (for C and T) and ``num_classes`` and returns a
[`FrameBackbone`][adamml.backbones.base.FrameBackbone]; all are built by timm with
``pretrained=False`` and ``num_classes=0``.
"""

from __future__ import annotations

import timm
from torch import nn

from ..modalities import Modality
from ..registries import BACKBONES
from . import tiny_timm  # noqa: F401  (registers the tiny timm architectures)
from .base import FrameBackbone, StagedBackbone, TimmFrameBackbone

__all__ = ["RESNET_PLAN", "MOBILENET_PLAN", "NARROW_POLICY_BACKBONES", "timm_frame_backbone"]

RESNET_PLAN = ("conv1", "bn1", "act1", "maxpool", "layer1", "layer2", "layer3", "layer4")
RESNET_POOLS = ("layer2", "layer3", "layer4")  # reference §3: start of stages 2, 3 and 4
MOBILENET_PLAN = ("conv_stem", "bn1", *(f"blocks.{i}" for i in range(7)), "conv_head", "bn2")
MOBILENET_POOLS = ("blocks.3", "blocks.5")  # reference §2: the 64- and 160-channel stages

NARROW_POLICY_BACKBONES: dict[str, str] = {
    "rgb": "resnet10_narrow_policy",
    "audio": "resnet10_narrow_audio_policy",
}
"""The faster policy extractors (not the paper's) as a ``policy_backbones`` mapping:
``create_model("adamml_rgb_audio", policy_backbones=NARROW_POLICY_BACKBONES)``."""


def _timm(name: str, modality: Modality, **kwargs: object) -> nn.Module:
    return timm.create_model(
        name, pretrained=False, num_classes=0, in_chans=modality.channels, **kwargs
    )


def _resnet_tsn(
    timm_name: str, modality: Modality, num_classes: int, temporal_pool: bool, drop_rate: float
) -> FrameBackbone:
    # zero_init_last=False: the reference's ResNets do not zero the last BN of each block, and
    # with it the residual branches would receive no gradient on the first step
    net = _timm(timm_name, modality, zero_init_last=False)
    return StagedBackbone(
        net,
        plan=RESNET_PLAN,
        pool_before=RESNET_POOLS,
        temporal_pool=temporal_pool,
        num_classes=num_classes,
        in_chans=modality.channels,
        frames=modality.frames,
        drop_rate=drop_rate,
    )


def _mobilenet(
    timm_name: str, modality: Modality, num_classes: int, temporal_pool: bool, drop_rate: float
) -> FrameBackbone:
    return StagedBackbone(
        _timm(timm_name, modality),
        plan=MOBILENET_PLAN,
        pool_before=MOBILENET_POOLS if temporal_pool else (),
        temporal_pool=temporal_pool,
        num_classes=num_classes,
        in_chans=modality.channels,
        frames=modality.frames,
        drop_rate=drop_rate,
    )


@BACKBONES.register("resnet50_tsn", aliases=("resnet50",))
def resnet50_tsn(
    *, modality: Modality, num_classes: int = 0, temporal_pool: bool = True, drop_rate: float = 0.5
) -> FrameBackbone:
    """TSN ResNet-50 with temporal max-pools before stages 2-4 (AdaMML Table 1, reference §3)."""
    return _resnet_tsn("resnet50", modality, num_classes, temporal_pool, drop_rate)


@BACKBONES.register("resnet18_tsn", aliases=("resnet18",))
def resnet18_tsn(
    *, modality: Modality, num_classes: int = 0, temporal_pool: bool = True, drop_rate: float = 0.5
) -> FrameBackbone:
    """TSN ResNet-18 with temporal max-pools before stages 2-4 (AdaMML Table 6)."""
    return _resnet_tsn("resnet18", modality, num_classes, temporal_pool, drop_rate)


@BACKBONES.register("mobilenetv2_audio")
def mobilenetv2_audio(
    *, modality: Modality, num_classes: int = 0, drop_rate: float = 0.5
) -> FrameBackbone:
    """MobileNetV2 on a 1x256x256 spectrogram, dropout 0.5 + Linear(1280, K) (reference §3)."""
    return _mobilenet("mobilenetv2_100", modality, num_classes, False, drop_rate)


@BACKBONES.register("mobilenetv2_policy")
def mobilenetv2_policy(
    *, modality: Modality, num_classes: int = 0, temporal_pool: bool = True, drop_rate: float = 0.0
) -> FrameBackbone:
    """Policy MobileNetV2 on 4x160x160 frames, temporal pools 4 -> 2 -> 1, 1280-d (ref. §2)."""
    return _mobilenet("mobilenetv2_100", modality, num_classes, temporal_pool, drop_rate)


@BACKBONES.register("mobilenetv2_audio_policy")
def mobilenetv2_audio_policy(
    *, modality: Modality, num_classes: int = 0, drop_rate: float = 0.0
) -> FrameBackbone:
    """Policy MobileNetV2 for audio: no temporal pooling, 1280-d features (reference §2)."""
    return _mobilenet("mobilenetv2_100", modality, num_classes, False, drop_rate)


@BACKBONES.register("resnet10_narrow_policy")
def resnet10_narrow_policy(
    *, modality: Modality, num_classes: int = 0, temporal_pool: bool = True, drop_rate: float = 0.0
) -> FrameBackbone:
    """Optional faster visual policy extractor: a narrow ResNet-10 on the 4x160x160 policy view
    with the same temporal pools as ``mobilenetv2_policy`` (4 -> 2 -> 1 frames), 256-d features.

    Not the paper's: 0.82x the GMACs of the paper's policy MobileNetV2s, and the policy ran
    1.7-1.8x faster with it on a CPU (``benchmarks/policy_levers.py``), where depthwise
    convolutions run far below the matrix peak. No timm weights exist for it
    (``pretrained=True`` raises), so it starts from scratch; its accuracy on SyntheticAV beside
    MobileNetV2's is in ``docs/speed.md``. Use it with ``create_model(...,
    policy_backbones=NARROW_POLICY_BACKBONES)``.
    """
    return _resnet_tsn("adamml_resnet10_narrow", modality, num_classes, temporal_pool, drop_rate)


@BACKBONES.register("resnet10_narrow_audio_policy")
def resnet10_narrow_audio_policy(
    *, modality: Modality, num_classes: int = 0, drop_rate: float = 0.0
) -> FrameBackbone:
    """Optional faster audio policy extractor: ``resnet10_narrow_policy`` without temporal
    pooling, as ``mobilenetv2_audio_policy`` (see there)."""
    return _resnet_tsn("adamml_resnet10_narrow", modality, num_classes, False, drop_rate)


def timm_frame_backbone(
    timm_name: str, *, modality: Modality, num_classes: int = 0, drop_rate: float = 0.5
) -> FrameBackbone:
    """Any timm model on every frame, features averaged over frames (``timm:<name>``)."""
    return TimmFrameBackbone(
        _timm(timm_name, modality),
        num_classes=num_classes,
        in_chans=modality.channels,
        frames=modality.frames,
        drop_rate=drop_rate,
    )


@BACKBONES.register("efficientnet_b0")
def efficientnet_b0(
    *, modality: Modality, num_classes: int = 0, drop_rate: float = 0.5
) -> FrameBackbone:
    """EfficientNet-B0 per frame, averaged over frames, no temporal pooling (AdaMML Table 6,
    the audio network beside EfficientNet-B3; ``efficientnet_b3`` says why no pooling)."""
    return timm_frame_backbone(
        "efficientnet_b0", modality=modality, num_classes=num_classes, drop_rate=drop_rate
    )


@BACKBONES.register("efficientnet_b3")
def efficientnet_b3(
    *, modality: Modality, num_classes: int = 0, drop_rate: float = 0.5
) -> FrameBackbone:
    """EfficientNet-B3 per frame, averaged over frames (AdaMML Table 6, the RGB network).

    No temporal pooling, by choice: the paper's appendix B adds temporal max-pools (kernel 3,
    stride 2) to the TSN ResNet-50 (before stages 2, 3 and 4) and two to the policy's
    MobileNetV2, and says nothing of the EfficientNets, so every one of the T frames runs
    through the whole network and the features are averaged (TSN consensus). On 8 RGB frames
    at 224 x 224 EfficientNet-B3 costs 7.69 GMACs per segment (paper convention; B0 on a
    1 x 256 x 256 spectrogram 0.49), so the full-size ``adamml_rgb_audio_efficientnet`` costs
    89.4 GFLOPs per video with every modality on all 10 segments; the paper's 30.55 is 34 % of
    that, which AdaMML's selection alone may or may not explain (the paper may have pooled or
    used fewer frames). ``examples/table6_backbones.py`` prints both. A pooled variant would
    be a [`StagedBackbone`][adamml.backbones.base.StagedBackbone] with pools between
    EfficientNet's stages.
    """
    return timm_frame_backbone(
        "efficientnet_b3", modality=modality, num_classes=num_classes, drop_rate=drop_rate
    )


# -- tiny backbones of the test_* models ----------------------------------------------------------
@BACKBONES.register("tiny_tsn")
def tiny_tsn(
    *, modality: Modality, num_classes: int = 0, temporal_pool: bool = True, drop_rate: float = 0.5
) -> FrameBackbone:
    """Tiny TSN ResNet (RGB, flow, RGB difference on 4x32x32), same code path as resnet50_tsn."""
    return _resnet_tsn("adamml_tiny_resnet", modality, num_classes, temporal_pool, drop_rate)


@BACKBONES.register("tiny_resnet18_tsn")
def tiny_resnet18_tsn(
    *, modality: Modality, num_classes: int = 0, temporal_pool: bool = True, drop_rate: float = 0.5
) -> FrameBackbone:
    """Tiny TSN ResNet with ResNet-18's depth (``examples/table6_backbones.py --mini``)."""
    return _resnet_tsn("adamml_tiny_resnet18", modality, num_classes, temporal_pool, drop_rate)


def _tiny_efficientnet(size: str) -> None:
    """Register ``tiny_efficientnet_<size>``: timm ``adamml_tiny_efficientnet_<size>`` per
    frame, averaged (``examples/table6_backbones.py --mini``)."""

    def factory(
        *, modality: Modality, num_classes: int = 0, drop_rate: float = 0.5
    ) -> FrameBackbone:
        return timm_frame_backbone(
            f"adamml_tiny_efficientnet_{size}",
            modality=modality,
            num_classes=num_classes,
            drop_rate=drop_rate,
        )

    factory.__name__ = factory.__qualname__ = f"tiny_efficientnet_{size}"
    factory.__doc__ = (
        f"Scaled-down EfficientNet-{size.upper()} per frame, averaged over frames (the "
        "``--mini`` stand-in of ``examples/table6_backbones.py``)."
    )
    BACKBONES.register(f"tiny_efficientnet_{size}")(factory)


for _size in ("b0", "b3"):
    _tiny_efficientnet(_size)


@BACKBONES.register("tiny_audio")
def tiny_audio(
    *, modality: Modality, num_classes: int = 0, drop_rate: float = 0.5
) -> FrameBackbone:
    """Tiny audio MobileNetV2 on 1x1x32x32, same code path as mobilenetv2_audio."""
    return _mobilenet("adamml_tiny_mobilenetv2", modality, num_classes, False, drop_rate)


@BACKBONES.register("tiny_policy")
def tiny_policy(
    *, modality: Modality, num_classes: int = 0, temporal_pool: bool = True, drop_rate: float = 0.0
) -> FrameBackbone:
    """Tiny policy MobileNetV2 on 2x24x24 views with the two temporal pools."""
    return _mobilenet("adamml_tiny_mobilenetv2", modality, num_classes, temporal_pool, drop_rate)


@BACKBONES.register("tiny_policy_resnet")
def tiny_policy_resnet(
    *, modality: Modality, num_classes: int = 0, temporal_pool: bool = True, drop_rate: float = 0.0
) -> FrameBackbone:
    """Tiny visual policy extractor: a narrow TSN ResNet on 2x24x24 views (the ``test_*``
    models' default; the tiny MobileNetV2 of ``tiny_policy`` does not learn from that view)."""
    return _resnet_tsn("adamml_tiny_resnet_policy", modality, num_classes, temporal_pool, drop_rate)


@BACKBONES.register("tiny_audio_policy")
def tiny_audio_policy(
    *, modality: Modality, num_classes: int = 0, drop_rate: float = 0.0
) -> FrameBackbone:
    """Tiny audio policy MobileNetV2 (no temporal pooling)."""
    return _mobilenet("adamml_tiny_mobilenetv2", modality, num_classes, False, drop_rate)
