"""Pretrained starts through timm's own download and cache (AdaMML Sec. 4.1 "Training Details":
the unimodal networks start from ImageNet weights; Table 6 from Kinetics-400).

``pretrained`` of [`create_backbone`][adamml.backbones.create_backbone] takes

* ``False``: random initialisation;
* ``True``: timm's default weights of the architecture the body was built as
  (``FrameBackbone.timm_model``, e.g. ``resnet50.a1_in1k``), fetched by timm into the Hugging
  Face cache (``HF_HOME``/``HF_HUB_CACHE``) on first use and read from there afterwards;
  ``HF_HUB_OFFLINE=1`` is honoured (cache only);
* ``"hf-hub:<org>/<name>"``: any timm model on the Hugging Face hub, the same way;
* a path: a local ``.pth``/``.pt``/``.bin``/``.safetensors`` file (never downloads).

Whatever the source, the weights go through
[`load_backbone_state`][adamml.backbones.weights.load_backbone_state]: an RGB stem is adapted
to the modality's C channels (flow 10, RGB difference 15, audio 1) by ``stem_init``, a
classifier of another size is dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeAlias

from torch import Tensor, nn

from ..errors import ConfigError, WeightsUnavailableError
from .weights import load_backbone_state, load_backbone_weights

__all__ = [
    "HF_HUB_PREFIX",
    "Pretrained",
    "load_pretrained",
    "timm_pretrained_state",
    "describe_pretrained",
]

HF_HUB_PREFIX = "hf-hub:"

Pretrained: TypeAlias = bool | str | Path
"""What ``pretrained`` takes: ``False``, ``True`` (timm's weights), ``"hf-hub:<org>/<name>"``
or a local weight file."""


def _hub_state() -> tuple[str, bool]:
    """The Hugging Face hub cache folder and whether ``HF_HUB_OFFLINE`` is on (read now, as
    huggingface_hub reads them)."""
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE), bool(constants.HF_HUB_OFFLINE)


def _unavailable(name: str, err: BaseException) -> str:
    cache, offline = _hub_state()
    if offline:
        why = "HF_HUB_OFFLINE=1 forbids downloading them"
    else:
        detail = " ".join(str(err).split())[:200]
        why = f"downloading them failed ({type(err).__name__}: {detail})"
    return (
        f"timm's pretrained weights {name!r} are not in the Hugging Face cache {cache} "
        f"(set by HF_HOME or HF_HUB_CACHE) and {why}; run once online (HF_HUB_OFFLINE unset) "
        "to fill the cache, or pass a local weight file (pretrained='/path/to/weights.pth')"
    )


def timm_pretrained_state(name: str) -> dict[str, Tensor]:
    """timm's pretrained weights for ``name``, through timm's download and cache.

    Args:
        name: a timm model name with or without a tag (``"resnet50.a1_in1k"``) or
            ``"hf-hub:<org>/<name>"``.

    Returns:
        The state dict of the 3-channel timm model without classifier (``num_classes=0``).

    Raises:
        WeightsUnavailableError: if the weights are not cached and cannot be downloaded
            (offline, no network); the message names the cache and ``HF_HUB_OFFLINE``.
        ConfigError: if timm has no pretrained weights for ``name``.
    """
    import timm
    from huggingface_hub.errors import EntryNotFoundError

    if not name.startswith(HF_HUB_PREFIX):
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(name)
        if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
            raise ConfigError(
                f"timm has no pretrained weights for {name!r}; pass a local weight file "
                "(pretrained='/path/to/weights.pth') or 'hf-hub:<org>/<name>'"
            )
    try:
        net = timm.create_model(name, pretrained=True, num_classes=0)
    except (OSError, RuntimeError, ValueError, EntryNotFoundError) as err:
        raise WeightsUnavailableError(_unavailable(name, err)) from None
    return net.state_dict()


def load_pretrained(model: nn.Module, pretrained: Pretrained, *, stem_init: str = "mean") -> None:
    """Load ``pretrained`` (see the module docstring) into a backbone; ``False`` does nothing.

    Args:
        model: a backbone; ``pretrained=True`` needs its ``timm_model``.
        pretrained: ``False``, ``True``, ``"hf-hub:<org>/<name>"`` or a local file.
        stem_init: how an RGB stem becomes C channels (``"mean"`` or ``"timm"``).

    Raises:
        WeightsUnavailableError: timm's weights neither cached nor downloadable.
        ConfigError: ``pretrained=True`` for a body timm did not build, or without weights.
        CheckpointError: weights that do not fit (the keys listed).

    Example:
        >>> from adamml.backbones import create_backbone
        >>> bb = create_backbone("tiny_tsn", modality="rgb")
        >>> load_pretrained(bb, False)  # nothing to do
    """
    if pretrained is False or pretrained is None:
        return
    if pretrained is True:
        name = getattr(model, "timm_model", None)
        if not name:
            raise ConfigError(
                f"pretrained=True: {type(model).__name__} was not built by timm, so there are "
                "no timm weights for it; pass a local weight file"
            )
        origin = f"timm's weights {name!r}"
        state = timm_pretrained_state(name)
    elif isinstance(pretrained, str) and pretrained.startswith(HF_HUB_PREFIX):
        origin = f"timm's weights {pretrained!r}"
        state = timm_pretrained_state(pretrained)
    elif isinstance(pretrained, (str, Path)):
        load_backbone_weights(model, pretrained, stem_init=stem_init)
        return
    else:
        raise ConfigError(
            f"pretrained must be False, True, 'hf-hub:<org>/<name>' or a local file path; "
            f"got {pretrained!r}"
        )
    load_backbone_state(model, state, stem_init=stem_init, origin=origin)


def describe_pretrained(pretrained: Pretrained) -> str:
    """A few words on where weights come from, for listings (``--dry-run``).

    Example:
        >>> describe_pretrained(True), describe_pretrained(False)
        ("timm's default (ImageNet) weights", 'random')
    """
    if pretrained is True:
        return "timm's default (ImageNet) weights"
    if not pretrained:
        return "random"
    if isinstance(pretrained, str) and pretrained.startswith(HF_HUB_PREFIX):
        return f"timm {pretrained}"
    return f"file {pretrained}"
