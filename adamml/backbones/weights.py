"""Weights for backbones (a local file or a state dict), with the reference's stem adaptation
for C != 3.

AdaMML (reference §2-3) initialises the first convolution of a flow (C=10), RGB-difference
(C=15) or audio (C=1) network from ImageNet RGB weights: the RGB kernel is averaged over its
three input channels and copied to every channel, without rescaling. timm's
``adapt_input_conv`` instead sums (C=1) or repeats and rescales by 3/C; ``stem_init="timm"``
keeps that. Nothing here downloads; `adamml.backbones.pretrained` fetches timm's weights and
hands them to `load_backbone_state`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from timm.models import adapt_input_conv
from torch import Tensor, nn

from ..errors import CheckpointError, ConfigError

__all__ = ["read_state_dict", "adapt_stem", "load_backbone_weights", "load_backbone_state"]

_HEAD_PREFIXES = ("fc.", "classifier.", "head.", "net.fc.", "net.classifier.", "net.head.")


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict from a ``.pth``/``.pt``/``.bin`` (``weights_only``) or ``.safetensors``.

    A ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper and a ``module.`` prefix are removed.

    Raises:
        CheckpointError: if the file is missing or holds no state dict.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(
            f"weight file {str(p)!r} does not exist; pass the path of a local weight file, "
            "pretrained=True (timm's weights) or 'hf-hub:<org>/<name>'"
        )
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd: object = load_file(str(p))
    else:
        sd = torch.load(p, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(sd, Mapping) and isinstance(sd.get(key), Mapping):
            sd = sd[key]
    if not isinstance(sd, Mapping):
        raise CheckpointError(f"{str(p)!r} holds a {type(sd).__name__}, not a state dict")
    return {k.removeprefix("module."): v for k, v in sd.items() if isinstance(v, Tensor)}


def adapt_stem(weight: Tensor, in_chans: int, mode: str = "mean") -> Tensor:
    """Adapt an RGB stem kernel to ``in_chans`` input channels.

    Args:
        weight: the stem kernel ``(O, 3, k, k)``.
        in_chans: C of the new network.
        mode: ``"mean"`` (reference: mean over RGB, copied to each channel, no rescaling) or
            ``"timm"`` (``timm.models.adapt_input_conv``).

    Returns:
        ``(O, C, k, k)``.

    Raises:
        ConfigError: for an unknown ``mode``.

    Example:
        >>> adapt_stem(torch.ones(4, 3, 3, 3), 10).shape
        torch.Size([4, 10, 3, 3])
    """
    if weight.shape[1] == in_chans:
        return weight
    if mode == "mean":
        mean = weight.mean(dim=1, keepdim=True)
        return mean.expand(-1, in_chans, -1, -1).contiguous()
    if mode == "timm":
        return adapt_input_conv(in_chans, weight)
    raise ConfigError(f"stem_init must be 'mean' or 'timm'; got {mode!r}")


def load_backbone_weights(model: nn.Module, path: str | Path, *, stem_init: str = "mean") -> None:
    """Load a local weight file into a backbone (`load_backbone_state` on `read_state_dict`).

    Raises:
        CheckpointError: if the file is missing or does not fit (the keys listed).
    """
    load_backbone_state(model, read_state_dict(path), stem_init=stem_init, origin=repr(str(path)))


def load_backbone_state(
    model: nn.Module,
    state: Mapping[str, Tensor],
    *,
    stem_init: str = "mean",
    origin: str = "the state dict",
) -> None:
    """Load RGB (or C-channel) weights into a backbone: stem adapted, a classifier of another
    size dropped.

    Keys are matched as they are, or with the ``net.`` prefix of
    [`TimmFrameBackbone`][adamml.backbones.base.TimmFrameBackbone] added, so plain timm weight
    files load.

    Args:
        model: the backbone.
        state: the weights, e.g. a timm model's ``state_dict()``.
        stem_init: how a 3-channel stem becomes C channels (see `adapt_stem`).
        origin: where the weights came from, for the error message.

    Raises:
        CheckpointError: listing the body keys that are missing, unexpected or of another shape.
    """
    ours = model.state_dict()
    src = dict(state)
    if not any(k in ours for k in src) and any(f"net.{k}" in ours for k in src):
        src = {f"net.{k}": v for k, v in src.items()}
    stem = next(k for k, v in ours.items() if v.dim() == 4)  # the first conv kernel
    if stem in src and src[stem].shape != ours[stem].shape:
        src[stem] = adapt_stem(src[stem], ours[stem].shape[1], stem_init)
    head = {k for k in set(src) | set(ours) if k.startswith(_HEAD_PREFIXES)}
    for k in head:
        if k in src and (k not in ours or src[k].shape != ours[k].shape):
            del src[k]  # a classifier for other classes: keep ours, freshly initialised
    missing = sorted(k for k in ours if k not in src and k not in head)
    unexpected = sorted(k for k in src if k not in ours)
    wrong = sorted(
        f"{k}: file {tuple(src[k].shape)} vs model {tuple(ours[k].shape)}"
        for k in src
        if k in ours and src[k].shape != ours[k].shape
    )
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{origin} does not fit {type(model).__name__}: missing {missing[:10]}, "
            f"unexpected {unexpected[:10]}, shape mismatch {wrong[:10]}"
            f" ({len(missing)}/{len(unexpected)}/{len(wrong)} in all)"
        )
    model.load_state_dict(src, strict=False)
