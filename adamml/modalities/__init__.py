"""Modalities: what each input looks like and which networks see it by default.

Built-ins: ``rgb``, ``flow``, ``rgbdiff`` and ``audio`` (alias ``sound``). Third parties add more
through the ``adamml.modalities`` entry-point group (the entry point names a
[`Modality`][adamml.modalities.Modality] instance).
"""

from __future__ import annotations

from ..registries import MODALITIES
from .spec import InputSpec, Modality

__all__ = [
    "InputSpec",
    "Modality",
    "get_modality",
    "canonical_name",
    "list_modalities",
    "register_modality",
    "RGB",
    "FLOW",
    "RGBDIFF",
    "AUDIO",
]

# the test_* twins: 4 frames at 32x32 (policy: 2 frames at 24x24), 32x32 audio, tiny backbones
# with about the paper's per-segment cost proportions (adamml.backbones.zoo, tiny_timm)
RGB = Modality(
    "rgb",
    channels=3,
    frames=8,
    size=(224, 224),
    tiny={
        "frames": 4,
        "size": (32, 32),
        "policy_size": (24, 24),
        "recognition_backbone": "tiny_tsn",
        "policy_backbone": "tiny_policy_resnet",
    },
    description="RGB frames, 8 per segment (every 4th of 32), ImageNet-normalised",
    producer="adamml.data.producers:RGBFrames",
)
# flow and RGB difference are sampled like RGB, each frame a stack of 5 consecutive ones (their
# tiny twins too)
FLOW = RGB.replace(
    name="flow",
    channels=10,
    consecutive=5,
    description="TV-L1 optical flow, 5 interleaved x/y pairs per frame, clipped to [-20, 20]",
    producer="adamml.data.producers:OpticalFlow",
)
RGBDIFF = FLOW.replace(
    name="rgbdiff",
    channels=15,
    description="RGB difference, 5 consecutive frame differences per frame (a cheap flow proxy)",
    producer="adamml.data.producers:RGBDifference",
)
AUDIO = Modality(
    "audio",
    channels=1,
    frames=1,
    size=(256, 256),
    is_audio=True,
    policy_size=None,
    policy_frame_stride=1,
    recognition_backbone="mobilenetv2_audio",
    policy_backbone="mobilenetv2_audio_policy",
    cost_weight=0.05,
    tiny={
        "size": (32, 32),
        "recognition_backbone": "tiny_audio",
        "policy_backbone": "tiny_audio_policy",
    },
    description="log-power spectrogram of a 1.28 s window at 24 kHz, 256x256",
    producer="adamml.data.producers:AudioSpectrogram",
)

for _m in (RGB, FLOW, RGBDIFF):
    MODALITIES.register(_m.name, _m)
MODALITIES.register("audio", AUDIO, aliases=("sound",))


def get_modality(name: str | Modality) -> Modality:
    """The registered [`Modality`][adamml.modalities.Modality] called ``name`` (``sound`` is
    ``audio``).

    Raises:
        UnknownModalityError: with close matches, e.g. for ``"rbg"``.
    """
    if isinstance(name, Modality):
        return name
    return MODALITIES.get(name)


def canonical_name(name: str) -> str:
    """The registered name behind an alias (``"sound"`` -> ``"audio"``); unknown names pass
    through unchanged so that callers can report them in their own terms (AdaMML Sec. 3.1)."""
    return MODALITIES.resolve(name) if name in MODALITIES else name


def list_modalities(pattern: str = "*") -> list[str]:
    """Registered modality names matching ``pattern``.

    The paper's four are RGB, flow, audio and RGB difference (AdaMML Sec. 3.1).
    """
    return MODALITIES.list(pattern)


def register_modality(
    modality: Modality, *, aliases: tuple[str, ...] = (), override: bool = False
) -> Modality:
    """Register a user-defined modality under ``modality.name``.

    Beyond the paper's four (AdaMML Sec. 3.1); plugins use the ``adamml.modalities`` group.
    """
    return MODALITIES.register(modality.name, modality, aliases=aliases, override=override)
