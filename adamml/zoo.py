"""Registered models: AdaMML and its baselines by name, with the paper's defaults.

``create_model`` is a thin layer that builds the blocks from registered names and hands them to
[`AdaMML`][adamml.model.AdaMML]. Every name has a ``test_`` twin: each modality as its
``Modality.tiny`` declares (the built-ins: tiny timm backbones and small inputs that keep the
paper's per-segment cost proportions) and the policy with its ``tiny_args``. The builder knows
no component by name: what it does differently for one, the component declares.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from torch import nn

from ._checks import accepts, check_kwargs
from .errors import ConfigError
from .liteeval import build_liteeval
from .losses import default_cost_weights
from .modalities import Modality, get_modality
from .model import POLICY_PART, AdaMML
from .registries import MODELS, POLICIES

if TYPE_CHECKING:
    from .backbones.pretrained import Pretrained

__all__ = [
    "ModelRecipe",
    "create_model",
    "list_models",
    "register_model",
    "get_recipe",
    "recipe_factory",
    "weights_per_part",
]


@dataclass(frozen=True)
class ModelRecipe:
    """How a registered model is assembled.

    Attributes:
        modalities: recognition modalities, in decision order.
        policy_modalities: what the policy looks at (same length; ``rgbdiff`` stands in for
            ``flow`` with the RGB-difference proxy).
        policy: a registered policy name (``lstm``, ``fc``, ``joint_gate``, ``random``, ``all``
            or a plugin's).
        fusion: fusion name.
        backbones: recognition backbone per modality (default: the modality's).
        policy_backbones: policy feature extractor per policy modality.
        policy_args: keyword arguments of ``policy`` (not given to another policy that
            ``create_model(policy=...)`` puts in its place).
        tiny: the ``test_`` twin: every modality as its ``Modality.tiny`` declares, the policy
            with its ``tiny_args``.
        description: one line for listings.
        build: the function that assembles a model family other than AdaMML from its blocks,
            ``build(recipe, *, num_classes, **overrides)`` (LiteEval:
            [`build_liteeval`][adamml.liteeval.build_liteeval]); ``None``: AdaMML's
            ``build_from_recipe``. Its keyword arguments are the overrides
            [`create_model`][adamml.zoo.create_model] accepts for the model.
    """

    modalities: tuple[str, ...]
    policy_modalities: tuple[str, ...] | None = None
    policy: str = "lstm"
    fusion: str = "learnable"
    backbones: Mapping[str, str] = field(default_factory=dict)
    policy_backbones: Mapping[str, str] = field(default_factory=dict)
    policy_args: Mapping[str, Any] = field(default_factory=dict)
    tiny: bool = False
    description: str = ""
    build: Callable[..., nn.Module] | None = None


def _spec(name: str, tiny: bool) -> Modality:
    """The registered modality, or the tiny twin it declares (``Modality.tiny``; a modality
    that declares none, e.g. a plugin's, is used as it is)."""
    mod = get_modality(name)
    return mod.replace(**mod.tiny) if tiny and mod.tiny else mod


def _chosen_backbones(
    defaults: Mapping[str, str],
    given: Mapping[str, str] | None,
    allowed: tuple[str, ...],
    what: str,
    refusal: str,
) -> dict[str, str]:
    """``defaults`` overridden by ``given`` ({modality or alias: backbone name}, keyed by the
    modality's name), raising a `ConfigError` for a modality not in ``allowed``."""
    out = dict(defaults)
    for m, name in (given or {}).items():
        key = get_modality(m).name
        if key not in allowed:
            raise ConfigError(f"{what} names {m!r}, which {refusal} {allowed}")
        out[key] = name
    return out


def build_from_recipe(
    recipe: ModelRecipe,
    *,
    num_classes: int,
    backbones: Mapping[str, str] | None = None,
    policy_backbones: Mapping[str, str] | None = None,
    policy: str | nn.Module | None = None,
    policy_args: Mapping[str, Any] | None = None,
    fusion: str | nn.Module | None = None,
    fusion_args: Mapping[str, Any] | None = None,
    cost_weights: Mapping[str, float] | None = None,
    gamma: float = 10.0,
    num_segments: int | tuple[int, int] | None = None,
    pretrained: Pretrained | Mapping[str, Pretrained] = False,
    precision: str = "fp32",
) -> AdaMML:
    """Build the blocks of ``recipe`` (with overrides) and compose them into an `AdaMML`."""
    from .backbones import create_backbone, resolve_backbone_name
    from .fusion import create_fusion
    from .policies import create_policy
    from .router import ModalityRouter

    if num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer; got {num_classes}")
    mods = recipe.modalities
    pmods = recipe.policy_modalities or mods
    specs = {m: _spec(m, recipe.tiny) for m in (*mods, *pmods)}
    chosen = _chosen_backbones(
        recipe.backbones, backbones, mods, "backbones", "this model does not use; it uses"
    )
    policy_chosen = _chosen_backbones(
        recipe.policy_backbones,
        policy_backbones,
        pmods,
        "policy_backbones",
        "this model's policy does not look at; it looks at",
    )

    def default_backbone(m: str, policy_side: bool) -> str:
        # specs hold the tiny twins already: their backbones are the tiny ones they declare
        return specs[m].policy_backbone if policy_side else specs[m].recognition_backbone

    # the policy's factory and arguments first: whether create_model builds its extractors
    # decides which parts `pretrained` may name
    factory = kwargs = None
    if not isinstance(policy, nn.Module):
        pname = policy or recipe.policy
        factory = POLICIES.get(pname)
        # the tiny sizes the policy declares for itself (fc has no LSTM: no hidden_size); the
        # recipe's policy_args belong to the recipe's policy: another one does not get them
        tiny_args = getattr(factory, "tiny_args", {}) if recipe.tiny else {}
        own = recipe.policy in POLICIES and POLICIES.get(recipe.policy) is factory
        recipe_args = recipe.policy_args if own else {}
        kwargs = {**tiny_args, **recipe_args, **(policy_args or {})}
    builds_extractors = (
        factory is not None
        and getattr(factory, "takes_feature_extractors", False)
        and "backbones" not in (kwargs or {})
    )
    if policy_backbones and not builds_extractors:
        named = type(policy).__name__ if isinstance(policy, nn.Module) else policy or recipe.policy
        raise ConfigError(
            "policy_backbones needs a policy whose feature extractors create_model builds (a "
            "registered policy with takes_feature_extractors, and no policy_args['backbones'])"
            f"; got policy {named!r}"
        )
    weights = weights_per_part(pretrained, mods, pmods if builds_extractors else ())
    # every registered name used, by entry-point group: the model's `components`
    used: dict[str, list[str]] = {
        "adamml.modalities": [specs[m].name for m in (*mods, *pmods)],
        "adamml.backbones": [],
        "adamml.policies": [],
        "adamml.fusions": [],
    }
    rec_names = {
        m: resolve_backbone_name(chosen.get(m) or default_backbone(m, False)) for m in mods
    }
    used["adamml.backbones"] += rec_names.values()

    def part_backbone(part: str, name: str, modality: Modality, k: int) -> nn.Module:
        try:
            return create_backbone(
                name, modality=modality, num_classes=k, pretrained=weights.get(part, False)
            )
        except ConfigError as e:
            if weights.get(part, False) is False:
                raise
            others = ", ".join(f"{m!r}: True" for m in mods if m != part)
            raise ConfigError(
                f"pretrained weights for part {part!r} ({name}): {e}; or name only the parts "
                f"that have weights, e.g. pretrained={{{others}}}"
            ) from e

    rec = {m: part_backbone(m, rec_names[m], specs[m], num_classes) for m in mods}
    router = ModalityRouter(rec)

    if isinstance(policy, nn.Module):
        pol = policy
    else:
        assert factory is not None and kwargs is not None  # set above for a policy by name
        if builds_extractors:
            names = {
                m: resolve_backbone_name(policy_chosen.get(m) or default_backbone(m, True))
                for m in pmods
            }
            used["adamml.backbones"] += names.values()
            kwargs["backbones"] = {
                m: part_backbone(POLICY_PART + m, names[m], specs[m], 0) for m in pmods
            }
        used["adamml.policies"].append(pname)
        pol = create_policy(pname, modalities=pmods, **kwargs)

    if isinstance(fusion, nn.Module):
        fus = fusion
    else:
        from .registries import FUSIONS

        fname = fusion or recipe.fusion
        used["adamml.fusions"].append(fname)
        # what the model knows about itself goes to the fusions that take it; the user's
        # fusion_args are checked by create_fusion
        known = {"num_classes": num_classes, "feature_dims": {m: rec[m].num_features for m in mods}}
        fkwargs = {k: v for k, v in known.items() if accepts(FUSIONS.get(fname), k)}
        fus = create_fusion(fname, modalities=mods, **{**fkwargs, **(fusion_args or {})})

    if num_segments is not None:
        warnings.warn(
            "create_model(num_segments=...) is deprecated and ignored: the data "
            "pipeline sets S (data.segments_train, data.segments_eval)",
            DeprecationWarning,
            stacklevel=3,
        )
    weights_default = default_cost_weights(mods, specs)
    model = AdaMML(
        pol,
        router,
        fus,
        modality_specs=specs,
        cost_weights=dict(cost_weights or weights_default),
        gamma=gamma,
        precision=precision,
    )
    model.components = {group: tuple(dict.fromkeys(names)) for group, names in used.items()}
    return model


def weights_per_part(
    pretrained: Pretrained | Mapping[str, Pretrained],
    modalities: tuple[str, ...],
    policy_modalities: tuple[str, ...] = (),
) -> dict[str, Pretrained]:
    """Where each part's weights come from (AdaMML Sec. 4.1: ImageNet starts).

    Args:
        pretrained: one value for every part (``False``, ``True``, ``"hf-hub:..."`` or a
            file; see `adamml.backbones.pretrained`), or ``{part: value}`` with parts named as
            `AdaMML.part_names`: ``"rgb"`` (a recognition backbone), ``"policy.rgb"`` (the
            policy's extractor); parts left out start random.
        modalities: the recognition modalities.
        policy_modalities: the policy's extractors that ``create_model`` builds.

    Returns:
        ``{part: value}`` for every part.

    Raises:
        ConfigError: for a key that names no part of the model (the parts listed).

    Example:
        >>> weights_per_part({"rgb": True, "policy.audio": "a.pth"}, ("rgb", "audio"),
        ...                  ("rgb", "audio"))
        {'rgb': True, 'audio': False, 'policy.rgb': False, 'policy.audio': 'a.pth'}
    """
    parts = [*modalities, *(POLICY_PART + m for m in policy_modalities)]
    if not isinstance(pretrained, Mapping):
        return dict.fromkeys(parts, pretrained)
    given: dict[str, Pretrained] = {}
    for key, value in pretrained.items():
        given[_canonical_part(str(key))] = value
    unknown = [k for k in given if k not in parts]
    if unknown:
        raise ConfigError(
            f"pretrained names {unknown}, which are not parts of this model; its parts are "
            f"{parts} (a policy.<modality> part only where create_model builds the policy's "
            "extractors)"
        )
    return {p: given.get(p, False) for p in parts}


def _canonical_part(key: str) -> str:
    """``"policy.RGB-diff"``-style aliases to the registered modality names; other keys as
    they are (reported as unknown parts)."""
    from .errors import UnknownModalityError

    prefix = POLICY_PART if key.startswith(POLICY_PART) else ""
    try:
        return prefix + get_modality(key[len(prefix) :]).name
    except UnknownModalityError:
        return key


def recipe_factory(name: str, recipe: ModelRecipe) -> Callable[..., AdaMML]:
    """The factory that ``MODELS`` holds for ``recipe``: ``factory(num_classes, **overrides)``
    (the overrides of [`create_model`][adamml.zoo.create_model]), with ``factory.recipe``.

    Raises (when called):
        ConfigError: for an override ``build_from_recipe`` does not take (the accepted ones
            listed) or one that does not fit the model.
    """

    builder = recipe.build or build_from_recipe

    def factory(num_classes: int, **overrides: Any) -> AdaMML:
        check_kwargs(
            builder,
            overrides,
            what=f"create_model({name!r})",
            given=("recipe", "num_classes"),
        )
        model = builder(recipe, num_classes=num_classes, **overrides)
        model.components = {"adamml.models": (name,), **model.components}
        return model

    factory.recipe = recipe  # type: ignore[attr-defined]
    factory.__qualname__ = f"recipe_factory.<{name}>"
    return factory


def register_model(name: str, recipe: ModelRecipe, *, override: bool = False) -> ModelRecipe:
    """Register ``recipe`` under ``name`` (and its tiny twin ``test_<name>``), like the paper's
    models (AdaMML Tables 1-3, 6) and LiteEval (Tables 4-5). ``MODELS`` holds factories only:
    the recipe's is `recipe_factory`."""
    for key, rec in ((name, recipe), (f"test_{name}", replace(recipe, tiny=True))):
        MODELS.register(key, recipe_factory(key, rec), override=override)
    return recipe


def get_recipe(name: str) -> ModelRecipe:
    """The [`ModelRecipe`][adamml.zoo.ModelRecipe] registered as ``name``.

    Raises:
        UnknownModelError: for an unknown name.
        ConfigError: if ``name`` is a plugin's factory without a recipe.
    """
    recipe = getattr(MODELS.get(name), "recipe", None)
    if not isinstance(recipe, ModelRecipe):
        raise ConfigError(
            f"model {name!r} is a factory without a ModelRecipe (a plugin); "
            "build it with create_model"
        )
    return recipe


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style pattern, e.g. ``"adamml_*"``."""
    return MODELS.list(pattern)


def create_model(name: str, num_classes: int, **overrides: Any) -> AdaMML:
    """Build a registered model, optionally overriding its parts in one call.

    Args:
        name: a registered name (see [`list_models`][adamml.zoo.list_models]).
        num_classes: K.
        **overrides: ``backbones`` ({modality: backbone name}; ``resnet18`` means the TSN
            ResNet-18, ``timm:<name>`` any timm model), ``policy_backbones`` ({policy
            modality: backbone name} for the policy's feature extractors, e.g. the faster
            ``resnet10_narrow_policy`` / ``resnet10_narrow_audio_policy``; see
            ``docs/speed.md``), ``policy`` (a name or a module),
            ``policy_args``, ``fusion`` (a name or a module), ``fusion_args``, ``cost_weights``,
            ``gamma``, ``pretrained`` (one value for every part or ``{part: value}``, e.g.
            ``{"rgb": True, "audio": "audio.pth", "policy.rgb": True}``; a value is ``False``,
            ``True`` for timm's ImageNet weights, ``"hf-hub:<org>/<name>"`` or a local file:
            see `weights_per_part` and `adamml.backbones.pretrained`) and ``precision``
            (``"fp32"``, ``"bf16"`` or ``"fp16"``; see `adamml.precision`); ``num_segments``
            is deprecated and ignored (the data pipeline sets S).

    Returns:
        An [`AdaMML`][adamml.model.AdaMML] module.

    Raises:
        UnknownModelError: for an unknown name (with close matches).
        ConfigError: for an override that does not fit the model.

    Example:
        >>> import adamml
        >>> m = adamml.create_model("test_adamml_rgb_audio", num_classes=6,
        ...                         backbones={"rgb": "tiny_tsn"}, policy="joint_gate",
        ...                         fusion="max")
    """
    factory = MODELS.get(name)
    check_kwargs(factory, overrides, what=f"create_model({name!r})", given=("num_classes",))
    return factory(num_classes=num_classes, **overrides)


# The paper's models, as data: each table below is looped over by `_register_builtins`.
_MODALITY_SETS = {
    "rgb_audio": ("rgb", "audio"),
    "rgb_flow": ("rgb", "flow"),
    "rgb_audio_flow": ("rgb", "audio", "flow"),
}
"""Tables 1-3: ``adamml_<key>`` (the policy looks at the same modalities) and ``fusion_<key>``."""

_RGBDIFF_PROXY = {
    "rgb_flow": "Table 2 AdaMML-RGBDiff: the policy sees RGB difference, flow is recognised",
    "rgb_audio_flow": "Table 3 AdaMML-RGBDiff: RGB + audio + flow with the RGB-difference proxy",
}
"""``adamml_<key>_rgbdiff``: the modalities of ``<key>``, the policy looking at RGB difference
where the recognition network uses flow."""

_TABLE6_BACKBONES = {
    "resnet18": ("ResNet-18 for RGB and audio", "resnet18_tsn", "resnet18_tsn"),
    "efficientnet": (
        "EfficientNet-b3 for RGB, EfficientNet-b0 for audio",
        "efficientnet_b3",
        "efficientnet_b0",
    ),
}
"""``adamml_rgb_audio_<key>``: (what it is, the RGB backbone, the audio backbone)."""


_LITEEVAL = {
    "full": {"coarse_size": (112, 112), "coarse_hidden": 512, "fine_hidden": 2048},
}
"""LiteEval's sizes (its ``policy_args``): the cheap view at LiteEval's 112x112, the LSTM
widths our choice (docs/components/liteeval.md); the tiny twin keeps the tiny policy view and
has narrow LSTMs (`adamml.liteeval.build_liteeval`)."""


def _register_builtins() -> None:
    for key, mods in _MODALITY_SETS.items():
        joined = " + ".join(mods)
        register_model(
            f"adamml_{key}",
            ModelRecipe(mods, description=f"AdaMML on {joined}; the policy looks at the same"),
        )
        register_model(
            f"fusion_{key}",
            ModelRecipe(mods, policy="all", description=f"weighted late fusion of {joined}"),
        )
    for key, description in _RGBDIFF_PROXY.items():
        mods = _MODALITY_SETS[key]
        proxy = tuple("rgbdiff" if m == "flow" else m for m in mods)
        register_model(f"adamml_{key}_rgbdiff", ModelRecipe(mods, proxy, description=description))
    for key, (what, rgb, audio) in _TABLE6_BACKBONES.items():
        register_model(
            f"adamml_rgb_audio_{key}",
            ModelRecipe(
                ("rgb", "audio"),
                backbones={"rgb": rgb, "audio": audio},
                description=f"Table 6: {what}",
            ),
        )
    register_model(
        "fusion_rgb_rgbdiff",
        ModelRecipe(
            ("rgb", "rgbdiff"),
            policy="all",
            description="Table 9: weighted late fusion of RGB and RGB difference",
        ),
    )
    register_model(
        "liteeval_rgb",
        ModelRecipe(
            ("rgb",),
            policy_args=_LITEEVAL["full"],
            build=build_liteeval,
            description="Tables 4-5: LiteEval, a coarse LSTM, a fine LSTM and a per-segment gate",
        ),
    )
    for m in ("rgb", "flow", "rgbdiff", "audio"):
        register_model(
            f"unimodal_{m}",
            ModelRecipe(
                (m,), policy="all", fusion="average", description=f"{m} alone, one backbone"
            ),
        )


_register_builtins()
