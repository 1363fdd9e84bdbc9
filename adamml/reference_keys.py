"""Map the reference implementation's sub-network state dicts to adamml's backbones and back.

The authors' checkpoints (key layout in ``spec/official-checkpoint-keys/*.tsv``) hold, per
sub-network:

| reference prefix | network | adamml backbone | mapping |
| --- | --- | --- | --- |
| ``main_net.nets.K.`` (ResNet) | TSN ResNet-50 | ``resnet50_tsn`` | same names (timm's ResNet names) |
| ``main_net.nets.K.`` (``features.*``, ``classifier.1``) | torchvision MobileNetV2 | ``mobilenetv2_audio`` | by order |
| ``policy_net.joint_net.nets.K.`` (``features.N.conv.M``, ``conv.0/1``) | d-li14 MobileNetV2 | ``mobilenetv2_policy`` | by order |

Both MobileNetV2 layouts and timm's ``mobilenetv2_100`` list their tensors in network order
(stem, blocks, head conv, classifier), so tensors are paired by position and every pair must have
the same shape. These are pure functions on state dicts; the whole-checkpoint loader builds on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from torch import Tensor, nn

from .errors import CheckpointError

__all__ = [
    "read_key_table",
    "sub_state_dict",
    "map_resnet",
    "resnet_to_reference",
    "map_mobilenetv2",
    "mobilenetv2_to_reference",
]


def read_key_table(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Read a ``key<TAB>shape`` table (``64x3x7x7``; empty for a scalar) in file order."""
    out: dict[str, tuple[int, ...]] = {}
    for line in Path(path).read_text().splitlines()[1:]:
        if not line.strip():
            continue
        key, _, shape = line.partition("\t")
        out[key] = tuple(int(s) for s in shape.split("x")) if shape.strip() else ()
    return out


def sub_state_dict(state: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries under ``prefix`` (e.g. ``"main_net.nets.0."``), prefix removed, order kept."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _shape(v: Tensor | Sequence[int]) -> tuple[int, ...]:
    return tuple(v.shape) if isinstance(v, Tensor) else tuple(v)


def _check_same_keys(src: Mapping[str, Tensor], target: Mapping[str, object], what: str) -> None:
    missing = [k for k in target if k not in src]
    unexpected = [k for k in src if k not in target]
    wrong = [
        f"{k}: {_shape(src[k])} vs {_shape(target[k])}"  # type: ignore[arg-type]
        for k in src
        if k in target and _shape(src[k]) != _shape(target[k])
    ]  # type: ignore[arg-type]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{what}: missing {missing[:8]}, unexpected {unexpected[:8]}, "
            f"shape mismatch {wrong[:8]} ({len(missing)}/{len(unexpected)}/"
            f"{len(wrong)} in all)"
        )


def map_resnet(ref_sd: Mapping[str, Tensor], ours: nn.Module | None = None) -> dict[str, Tensor]:
    """Reference TSN ResNet (``conv1``, ``bn1``, ``layer1..4``, ``fc``) -> ``resnet50_tsn``.

    The names are identical; with ``ours`` given, keys and shapes are checked.

    Raises:
        CheckpointError: listing missing, unexpected and mismatched keys.

    Example:
        >>> sd = map_resnet(sub_state_dict(ckpt, "main_net.nets.0."), backbone)  # doctest: +SKIP
    """
    out = dict(ref_sd)
    if ours is not None:
        _check_same_keys(out, ours.state_dict(), "reference ResNet -> adamml")
    return out


def resnet_to_reference(our_sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``resnet50_tsn`` state dict -> the reference ResNet layout (identical names)."""
    return dict(our_sd)


def _pair_by_order(
    src: Mapping[str, Tensor],
    target: Mapping[str, object],
    what: str,
) -> dict[str, Tensor]:
    src_keys, tgt_keys = list(src), list(target)
    problems = []
    for i in range(max(len(src_keys), len(tgt_keys))):
        s = src_keys[i] if i < len(src_keys) else None
        t = tgt_keys[i] if i < len(tgt_keys) else None
        if s is None or t is None:
            problems.append(f"#{i}: {s or '(none)'} <-> {t or '(none)'} (unmatched)")
        elif _shape(src[s]) != _shape(target[t]):  # type: ignore[arg-type]
            problems.append(f"#{i}: {s} {_shape(src[s])} <-> {t} {_shape(target[t])}")  # type: ignore[arg-type]
    if problems:
        raise CheckpointError(
            f"{what}: {len(src_keys)} tensors vs {len(tgt_keys)}; first problems: "
            + "; ".join(problems[:6])
            + f" ({len(problems)} in all)"
        )
    return {t: src[s] for s, t in zip(src_keys, tgt_keys)}


def map_mobilenetv2(ref_sd: Mapping[str, Tensor], ours: nn.Module) -> dict[str, Tensor]:
    """A reference MobileNetV2 (policy or sound layout) -> our MobileNetV2 backbone's names.

    Args:
        ref_sd: the sub-network's state dict in file order, prefix removed (see
            [`sub_state_dict`][adamml.reference_keys.sub_state_dict]).
        ours: the target backbone, e.g. ``create_backbone("mobilenetv2_policy", ...)``.

    Returns:
        A state dict for ``ours.load_state_dict``.

    Raises:
        CheckpointError: if the tensor counts differ or a pair has different shapes (the
            message lists the first unmatched or mismatched keys).
    """
    return _pair_by_order(ref_sd, ours.state_dict(), "reference MobileNetV2 -> adamml")


def mobilenetv2_to_reference(
    our_sd: Mapping[str, Tensor],
    ref_keys: Sequence[str] | Mapping[str, Sequence[int]],
) -> dict[str, Tensor]:
    """Our MobileNetV2 state dict -> the reference layout given by its key list (in order).

    Args:
        our_sd: ``backbone.state_dict()``.
        ref_keys: the reference names in order, or ``{name: shape}`` (then shapes are checked),
            e.g. from [`read_key_table`][adamml.reference_keys.read_key_table].

    Raises:
        CheckpointError: as [`map_mobilenetv2`][adamml.reference_keys.map_mobilenetv2].
    """
    if isinstance(ref_keys, Mapping):
        target: Mapping[str, object] = ref_keys
    else:
        target = {k: our_sd[o].shape for k, o in zip(ref_keys, our_sd)}
        if len(ref_keys) != len(our_sd):
            target = dict(target, **{k: () for k in ref_keys[len(our_sd) :]})
    return _pair_by_order(our_sd, target, "adamml MobileNetV2 -> reference")
