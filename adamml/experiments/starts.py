"""Where each table row's weights start: ``--pretrained`` and ``--init-k400`` of the example
scripts (AdaMML Sec. 4.1 "Training Details": unimodal networks from ImageNet; Sec. 4.2 and
Table 6: from Kinetics-400 for the comparison with ListenToLook).

A row's model has parts (`AdaMML.part_names`): a recognition backbone per modality (``rgb``) and,
for a learned policy, a feature extractor per policy modality (``policy.rgb``). A part that the
row initialises from another row (``Run.init``, e.g. the unimodal model's ``best.pt``) takes
those weights; every other part starts from what ``--pretrained`` says:

* ``imagenet`` (full mode's default): timm's default weights of the part's architecture
  (ImageNet-1k for the built-in backbones), fetched once into the Hugging Face cache;
* ``none`` (``--mini``'s default: the tiny ``test_*`` architectures have no pretrained weights):
  random;
* a file: that file for every part (only sensible where the parts share an architecture);
* a directory: ``<part>.pth`` (or ``.pt``, ``.safetensors``, ``.bin``) for each part that has
  one, e.g. ``rgb.pth``, ``audio.safetensors``, ``policy.rgb.pth``; the others start random.

``--init-k400 DIR`` (Table 6) gives each unimodal row's backbone Kinetics-400 weights from
``DIR/<modality>-<backbone>.pth`` (the same suffixes), e.g. ``rgb-resnet18_tsn.pth``,
``audio-resnet18_tsn.pth``, ``rgb-resnet50_tsn.pth``, ``audio-mobilenetv2_audio.pth``,
``rgb-efficientnet_b3.pth``, ``audio-efficientnet_b0.pth``: a plain (timm-style) state dict of
that backbone; a missing file is an error naming the file expected.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..backbones.pretrained import Pretrained, describe_pretrained

__all__ = [
    "WEIGHT_SUFFIXES",
    "add_start_args",
    "pretrained_choice",
    "row_parts",
    "start_weights",
    "describe_starts",
]

WEIGHT_SUFFIXES = (".pth", ".pt", ".safetensors", ".bin")
POLICY_PART = "policy."


def add_start_args(p: argparse.ArgumentParser, *, k400: bool = False) -> None:
    """``--pretrained imagenet|none|PATH`` and, with ``k400``, ``--init-k400 DIR``."""
    p.add_argument(
        "--pretrained",
        metavar="imagenet|none|PATH",
        help="where the parts not initialised from another row start: timm's ImageNet weights, "
        "random, a weight file for every part or a folder of <part>.pth files "
        "(default: imagenet in full mode, none with --mini)",
    )
    if k400:
        p.add_argument(
            "--init-k400",
            metavar="DIR",
            help="Kinetics-400 weights for the unimodal backbones (the paper's Table 6 start): "
            "DIR/<modality>-<backbone>.pth, e.g. rgb-resnet18_tsn.pth, audio-mobilenetv2_audio.pth",
        )


def pretrained_choice(args: argparse.Namespace) -> Pretrained:
    """``True`` (imagenet), ``False`` (none) or the path given to ``--pretrained``.

    Raises:
        SystemExit: for a path that does not exist.
    """
    choice = getattr(args, "pretrained", None) or ("none" if args.mini else "imagenet")
    if choice == "imagenet":
        return True
    if choice == "none":
        return False
    if not Path(choice).exists():
        raise SystemExit(f"error: --pretrained {choice}: no such file or folder")
    return choice


def row_parts(model: str, model_args: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The recognition parts and the policy parts (``policy.<m>``) of a row's model, read from
    its recipe without building it; none for a factory without a recipe (a plugin's model,
    which starts as its factory builds it)."""
    from .._checks import accepts
    from ..errors import ConfigError
    from ..registries import POLICIES
    from ..zoo import build_from_recipe, get_recipe

    try:
        recipe = get_recipe(model)
    except ConfigError:  # a factory without a ModelRecipe: its parts are not known here
        return [], []
    if not accepts(getattr(recipe, "build", None) or build_from_recipe, "pretrained"):
        return [], []  # a model family whose builder takes no pretrained weights
    mods = list(recipe.modalities)
    pmods = recipe.policy_modalities or recipe.modalities
    policy = model_args.get("policy") or recipe.policy
    builds = (
        isinstance(policy, str)
        and getattr(POLICIES.get(policy), "takes_feature_extractors", False)
        and "backbones" not in (model_args.get("policy_args") or {})
    )
    return mods, [POLICY_PART + m for m in pmods] if builds else []


def _part_backbone(model: str, model_args: Mapping[str, Any], part: str) -> str:
    """The registered backbone name of a part (the recipe's, overridden by ``backbones``)."""
    from ..backbones import resolve_backbone_name
    from ..zoo import _spec, get_recipe

    recipe = get_recipe(model)
    if part.startswith(POLICY_PART):
        m = part[len(POLICY_PART) :]
        name = recipe.policy_backbones.get(m) or _spec(m, recipe.tiny).policy_backbone
    else:
        name = (model_args.get("backbones") or {}).get(part) or recipe.backbones.get(part)
        name = name or _spec(part, recipe.tiny).recognition_backbone
    return resolve_backbone_name(name)


@functools.cache
def _timm_model(backbone: str, modality: str) -> str | None:
    """The timm ``architecture.tag`` of a backbone, built on the meta device (no memory, no
    initialisation)."""
    import torch

    from ..backbones import create_backbone

    with torch.device("meta"):
        return getattr(create_backbone(backbone, modality=modality), "timm_model", None)


def _find(folder: Path, stem: str) -> Path | None:
    return next(
        (folder / f"{stem}{s}" for s in WEIGHT_SUFFIXES if (folder / f"{stem}{s}").is_file()),
        None,
    )


def _value(choice: Pretrained, part: str) -> Pretrained:
    if isinstance(choice, bool):
        return choice
    path = Path(choice)
    if path.is_dir():
        found = _find(path, part)
        return str(found) if found else False
    return str(path)


def start_weights(
    model: str,
    model_args: Mapping[str, Any],
    init: Mapping[str, str],
    *,
    unimodal: bool,
    args: argparse.Namespace,
) -> dict[str, Pretrained]:
    """``model_args.pretrained`` of one row: ``{part: value}`` for the parts ``init`` leaves
    out, without the ones that start random (empty: every part random or initialised).

    Args:
        model: the registered model (full size or its ``test_`` twin).
        model_args: the row's ``create_model`` overrides.
        init: the row's ``{part: key of another row}``.
        unimodal: the row trains a unimodal model (``--init-k400`` applies).
        args: the parsed command line (``--mini``, ``--pretrained``, ``--init-k400``).

    Raises:
        SystemExit: for a ``--pretrained`` path that does not exist, or an ``--init-k400``
            folder without the file a unimodal row needs (the name expected).
    """
    choice = pretrained_choice(args)
    k400 = getattr(args, "init_k400", None)
    mods, policy_parts = row_parts(model, model_args)
    out: dict[str, Pretrained] = {}
    for part in (*mods, *policy_parts):
        if part in init:
            continue
        if k400 and unimodal and part in mods:
            stem = f"{part}-{_part_backbone(model, model_args, part)}"
            found = _find(Path(k400), stem)
            if found is None:
                raise SystemExit(
                    f"error: --init-k400 {k400}: no {stem}.pth (or "
                    f"{', '.join(WEIGHT_SUFFIXES[1:])}) for the {part} backbone of {model}"
                )
            out[part] = str(found)
            continue
        value = _value(choice, part)
        if value is not False:
            out[part] = value
    return out


def describe_starts(raw: Mapping[str, Any]) -> str:
    """One line saying where each part of a built config starts (``--dry-run``), e.g.
    ``rgb <- init runs/unimodal_rgb/best.pt; policy.rgb <- timm mobilenetv2_100.ra_in1k
    (ImageNet)``.
    """
    model_args = raw.get("model_args") or {}
    init = raw.get("init") or {}
    pretrained = model_args.get("pretrained") or {}
    mods, policy_parts = row_parts(raw["model"], model_args)
    starts = []
    for part in (*mods, *policy_parts):
        value = pretrained.get(part, False) if isinstance(pretrained, Mapping) else pretrained
        if part in init:
            where = f"init {init[part]}"
        elif value is True:
            modality = part.removeprefix(POLICY_PART)
            tag = _timm_model(_part_backbone(raw["model"], model_args, part), modality)
            where = f"timm {tag} (ImageNet)"
        else:
            where = describe_pretrained(value)
        starts.append(f"{part} <- {where}")
    return "; ".join(starts) or "as the model's factory builds it"
