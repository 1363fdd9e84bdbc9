"""Load checkpoints saved by the authors' reference implementation into adamml models.

The reference (IBM/AdaMML) saves ``{"state_dict": ..., "temperature": tau, ...}`` with the keys
listed in ``spec/official-checkpoint-keys`` (``module.`` prefixed under DDP):

| reference | adamml |
| --- | --- |
| ``main_net.nets.K.*`` (ResNet or torchvision MobileNetV2) | ``router.backbones[modalities[K]]`` |
| ``main_net.lf_weights`` | ``fusion.weight`` (learnable late fusion) |
| ``policy_net.joint_net.nets.K.*`` (MobileNetV2) | ``policy.backbones[policy_modalities[K]]`` |
| ``policy_net.joint_net.joint.{0,2}`` | ``policy.joint.{0,2}`` |
| ``policy_net.lstm.*`` | ``policy.lstm.*`` |
| ``policy_net.fcs.K`` | ``policy.heads.K`` |
| ``temperature`` | ``policy.gate.tau`` |
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .errors import CheckpointError
from .reference_keys import (
    map_mobilenetv2,
    map_resnet,
    mobilenetv2_to_reference,
    resnet_to_reference,
    sub_state_dict,
)

__all__ = ["load_reference_checkpoint", "convert_reference_state_dict", "to_reference_state_dict"]

_MAIN, _POLICY = "main_net.nets.", "policy_net.joint_net.nets."
_DIRECT = {  # reference prefix -> adamml prefix, same tensor names below
    "policy_net.joint_net.joint.": "policy.joint.",
    "policy_net.lstm.": "policy.lstm.",
    "policy_net.fcs.": "policy.heads.",
}


def _is_resnet(sd: Mapping[str, Tensor]) -> bool:
    return "conv1.weight" in sd


def _read(
    path_or_state_dict: str | os.PathLike[str] | Mapping[str, Any],
) -> tuple[dict[str, Tensor], float | None]:
    if isinstance(path_or_state_dict, Mapping):
        ckpt: Any = path_or_state_dict
    else:
        try:
            ckpt = torch.load(path_or_state_dict, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise CheckpointError(f"{path_or_state_dict}: no such checkpoint file") from None
        except Exception as exc:  # unpickling errors come in many types
            raise CheckpointError(
                f"{path_or_state_dict}: cannot be read as a weights-only checkpoint "
                f"({type(exc).__name__}: {str(exc).splitlines()[0]}). If you trust the file, "
                "load it with torch.load(..., weights_only=False) and pass ckpt['state_dict']"
            ) from exc
    temperature = ckpt.get("temperature") if isinstance(ckpt, Mapping) else None
    sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, Mapping) else None
    if not isinstance(sd, Mapping) or not all(isinstance(v, Tensor) for v in sd.values()):
        raise CheckpointError(
            "the checkpoint holds no state dict of tensors "
            "(expected the reference's {'state_dict': ..., 'temperature': ...})"
        )
    sd = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in sd.items()}
    return sd, None if temperature is None else float(temperature)


def _infer_num_classes(sd: Mapping[str, Tensor]) -> int:
    for key in ("main_net.nets.0.fc.weight", "main_net.nets.0.classifier.1.weight"):
        if key in sd:
            return int(sd[key].shape[0])
    raise CheckpointError("cannot infer num_classes: no main_net.nets.0 classifier; pass it")


def convert_reference_state_dict(sd: Mapping[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Map a reference-layout state dict (no ``module.`` prefix) onto ``model``'s names.

    Raises:
        CheckpointError: listing reference keys that nothing consumed, model keys that nothing
            filled, or tensors whose shapes differ.
    """
    out: dict[str, Tensor] = {}
    consumed: set[str] = set()

    def take(prefix: str) -> dict[str, Tensor]:
        part = sub_state_dict(sd, prefix)
        consumed.update(prefix + k for k in part)
        return part

    for k, m in enumerate(model.modalities):
        part, bb = take(f"{_MAIN}{k}."), model.router.backbones[m]
        mapped = map_resnet(part, bb) if _is_resnet(part) else map_mobilenetv2(part, bb)
        out.update({f"router.backbones.{m}.{n}": v for n, v in mapped.items()})
    policy_backbones = getattr(model.policy, "backbones", None)
    if policy_backbones is not None:
        for k, m in enumerate(model.policy_modalities):
            mapped = map_mobilenetv2(take(f"{_POLICY}{k}."), policy_backbones[m])
            out.update({f"policy.backbones.{m}.{n}": v for n, v in mapped.items()})
    for ref_prefix, our_prefix in _DIRECT.items():
        out.update({our_prefix + n: v for n, v in take(ref_prefix).items()})
    if "main_net.lf_weights" in sd:
        consumed.add("main_net.lf_weights")
        out["fusion.weight"] = sd["main_net.lf_weights"]

    ours = model.state_dict()
    leftover = [k for k in sd if k not in consumed]
    # the temperature comes beside the weights; the reference has no decision thresholds (0)
    unfilled = [k for k in ours if k not in out and not k.endswith((".tau", ".thresholds"))]
    unknown = [k for k in out if k not in ours]
    wrong = [
        f"{k}: {tuple(out[k].shape)} vs {tuple(ours[k].shape)}"
        for k in out
        if k in ours and out[k].shape != ours[k].shape
    ]
    if leftover or unfilled or unknown or wrong:
        raise CheckpointError(
            "the reference checkpoint does not fit this model: "
            f"unused reference keys {leftover[:6]} ({len(leftover)}), "
            f"model keys not in the checkpoint {unfilled[:6]} ({len(unfilled)}), "
            f"keys the model lacks {unknown[:6]} ({len(unknown)}), "
            f"shape mismatches {wrong[:6]} ({len(wrong)}); is `name` the right model?"
        )
    return out


def load_reference_checkpoint(
    path_or_state_dict: str | os.PathLike[str] | Mapping[str, Any],
    name: str = "adamml_rgb_audio",
    num_classes: int | None = None,
    **create_kwargs: Any,
) -> nn.Module:
    """Build ``name`` and load a checkpoint saved by the authors' reference implementation.

    With the same decisions the loaded model gives the reference's video-level logits to
    float32 rounding; the policy view follows the reference (bilinear 160x160, frames 0, 2, 4,
    6). Note that adamml's gate is deterministic in eval (the reference samples at test time;
    pass ``policy_args={"gate": GumbelGate(sample_at_eval=True)}`` to reproduce that).

    Args:
        path_or_state_dict: the ``.pth.tar`` file, the loaded checkpoint dict or its state dict
            (with or without the ``module.`` prefix).
        name: the registered model with the reference's layout, e.g. ``"adamml_rgb_audio"``,
            ``"adamml_rgb_flow_rgbdiff"``, ``"adamml_rgb_audio_flow_rgbdiff"``.
        num_classes: K; inferred from the classifier when omitted.
        **create_kwargs: passed to [`create_model`][adamml.zoo.create_model].

    Returns:
        The model, in eval mode, with the checkpoint's temperature restored.

    Raises:
        CheckpointError: unreadable file, or keys/shapes that do not fit (all listed).

    Example:
        >>> model = adamml.load_reference_checkpoint("kinetics_sounds_rgb_sound.pth.tar",
        ...                                          name="adamml_rgb_audio")  # doctest: +SKIP
    """
    from .zoo import create_model

    sd, temperature = _read(path_or_state_dict)
    model = create_model(name, num_classes=num_classes or _infer_num_classes(sd), **create_kwargs)
    model.load_state_dict(convert_reference_state_dict(sd, model), strict=False)
    gate = getattr(model.policy, "gate", None)
    if temperature is not None and gate is not None:
        gate.set_temperature(temperature)
    return model.eval()


def to_reference_state_dict(
    model: nn.Module, key_tables: Mapping[str, Sequence[str]] | None = None, *, prefix: str = ""
) -> dict[str, Tensor]:
    """Export ``model`` in the reference layout (for tests and for tools built on the reference).

    Args:
        model: an AdaMML model with the reference architecture.
        key_tables: the reference key names in order for each MobileNetV2 sub-network, keyed by
            reference prefix (e.g. ``"main_net.nets.1."``); ResNets need none.
        prefix: prepended to every key (``"module."`` mimics a DDP checkpoint).

    Raises:
        CheckpointError: if a MobileNetV2 sub-network has no key table or the table does not fit.
    """
    ours, tables = model.state_dict(), dict(key_tables or {})
    out: dict[str, Tensor] = {}

    def export(ref_prefix: str, our_prefix: str) -> None:
        part = sub_state_dict(ours, our_prefix)
        if _is_resnet(part):
            mapped = resnet_to_reference(part)
        elif ref_prefix in tables:
            mapped = mobilenetv2_to_reference(part, list(tables[ref_prefix]))
        else:
            raise CheckpointError(f"no reference key table for {ref_prefix!r}")
        out.update({ref_prefix + k: v for k, v in mapped.items()})

    for k, m in enumerate(model.modalities):
        export(f"{_MAIN}{k}.", f"router.backbones.{m}.")
    if getattr(model.policy, "backbones", None) is not None:
        for k, m in enumerate(model.policy_modalities):
            export(f"{_POLICY}{k}.", f"policy.backbones.{m}.")
    for ref_prefix, our_prefix in _DIRECT.items():
        out.update({ref_prefix + n: v for n, v in sub_state_dict(ours, our_prefix).items()})
    if "fusion.weight" in ours:
        out["main_net.lf_weights"] = ours["fusion.weight"]
    return {prefix + k: v for k, v in out.items()}
