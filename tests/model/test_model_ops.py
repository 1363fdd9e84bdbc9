"""What the model offers the engine and the cost counter: parts, training phases, parameter
groups, and policies that declare what they are (issue #11: nothing reaches into internals)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import adamml
from adamml.errors import ConfigError
from adamml.model import freeze_norm_and_dropout
from adamml.policies import GumbelGate, PolicyLSTM
from adamml.policies.gate import set_decision_mode
from adamml.registries import POLICIES


@pytest.fixture(scope="module")
def model() -> adamml.AdaMML:
    torch.manual_seed(0)
    return adamml.create_model("test_adamml_rgb_audio", num_classes=3)


def test_part_names_split_into_recognition_and_policy(model: adamml.AdaMML) -> None:
    assert model.recognition_part_names == ("rgb", "audio")
    assert model.policy_part_names == ("policy.rgb", "policy.audio")
    assert model.part_names == (*model.recognition_part_names, *model.policy_part_names)
    assert [model.is_policy_part(n) for n in model.part_names] == [False, False, True, True]
    assert model.part_modality("policy.audio") == "audio"
    assert model.part_modality("sound") == "audio"
    assert model.part("rgb") is model.router.backbone("rgb")
    assert set(model.policy_extractors()) == {"rgb", "audio"}


def test_router_backbone_accessor(model: adamml.AdaMML) -> None:
    assert model.router.backbone("sound") is model.router.backbone("audio")
    with pytest.raises(ConfigError, match="no backbone for 'flow'"):
        model.router.backbone("flow")


def test_a_policy_without_extractors_has_no_policy_parts() -> None:
    m = adamml.create_model("test_adamml_rgb_audio", num_classes=3, policy="random")
    assert m.policy_part_names == () and m.policy_extractors() == {}
    assert m.part_names == ("rgb", "audio")


def test_parameter_groups_cover_the_model_once(model: adamml.AdaMML) -> None:
    rec, pol = model.recognition_parameters(), model.policy_parameters()
    ids = [id(p) for p in (*rec, *pol)]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert {id(p) for p in pol} == {id(p) for p in model.policy.parameters()}


def _modes(module: nn.Module, kind: type) -> set[bool]:
    return {m.training for m in module.modules() if isinstance(m, kind)}


def test_set_phase_recognition_freezes_the_policy(model: adamml.AdaMML) -> None:
    model.set_phase("recognition", policy_decisions="argmax")
    assert all(p.requires_grad for p in model.recognition_parameters())
    assert not any(p.requires_grad for p in model.policy_parameters())
    assert _modes(model.policy, nn.modules.batchnorm._NormBase) == {False}
    assert _modes(model.policy, GumbelGate) == {False}  # argmax
    assert _modes(model.router, nn.modules.batchnorm._NormBase) == {True}
    model.set_phase("recognition")  # the reference: a frozen policy keeps sampling
    assert _modes(model.policy, GumbelGate) == {True}
    model.set_phase("recognition", freeze_statistics=False)
    assert _modes(model.policy, nn.modules.batchnorm._NormBase) == {True}


def test_set_phase_policy_freezes_recognition(model: adamml.AdaMML) -> None:
    model.set_phase("policy", policy_decisions="argmax")  # ignored: a trained policy samples
    assert not any(p.requires_grad for p in model.recognition_parameters())
    assert all(p.requires_grad for p in model.policy_parameters())
    assert _modes(model.router, nn.modules.batchnorm._NormBase) == {False}
    assert _modes(model.router, nn.modules.dropout._DropoutNd) <= {False}
    assert _modes(model.policy, GumbelGate) == {True}
    with pytest.raises(ConfigError, match="phase"):
        model.set_phase("fusion")
    with pytest.raises(ConfigError, match="policy_decisions"):
        model.set_phase("recognition", policy_decisions="greedy")
    model.train().requires_grad_(True)


def test_freeze_norm_and_dropout_covers_every_dropout_and_norm() -> None:
    net = nn.Sequential(
        nn.Dropout2d(),
        nn.Dropout1d(),
        nn.AlphaDropout(),
        nn.BatchNorm2d(2),
        nn.GroupNorm(1, 2),
        nn.Linear(2, 2),
    ).train()
    freeze_norm_and_dropout(net)
    assert [m.training for m in net] == [False] * 5 + [True]


def test_set_decision_mode_reaches_every_gate() -> None:
    policy = nn.ModuleDict({"a": GumbelGate(), "b": nn.Sequential(GumbelGate())}).train()
    set_decision_mode(policy, "argmax")
    assert _modes(policy, GumbelGate) == {False} and policy.training
    set_decision_mode(policy, "sample")
    assert _modes(policy, GumbelGate) == {True}
    with pytest.raises(ConfigError, match="decision mode"):
        set_decision_mode(policy, "soft")


def test_policies_declare_whether_they_take_feature_extractors() -> None:
    assert [
        POLICIES.get(n).takes_feature_extractors
        for n in ("lstm", "fc", "joint_gate", "random", "all")
    ] == [True] * 3 + [False] * 2


def test_a_plugin_policy_gets_feature_extractors_too() -> None:
    @POLICIES.register("test_plugin_lstm")
    class PluginPolicy(PolicyLSTM):
        pass

    try:
        m = adamml.create_model("test_adamml_rgb_audio", num_classes=3, policy="test_plugin_lstm")
        assert isinstance(m.policy, PluginPolicy)
        assert m.policy_part_names == ("policy.rgb", "policy.audio")
        same = adamml.create_model("test_adamml_rgb_audio", num_classes=3)
        assert m.cost_table.policy == pytest.approx(same.cost_table.policy)  # tiny extractors
    finally:
        POLICIES._items.pop("test_plugin_lstm", None)  # no unregister: undo by hand
        POLICIES._info.pop("test_plugin_lstm", None)


def test_num_segments_is_deprecated_and_not_stored() -> None:
    with pytest.warns(DeprecationWarning, match="num_segments"):
        m = adamml.create_model("test_adamml_rgb_audio", num_classes=3, num_segments=4)
    assert not hasattr(m, "num_segments") and m.gamma == 10.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adamml.create_model("test_adamml_rgb_audio", num_classes=3)


@pytest.mark.parametrize("policy", ["lstm", "fc", "joint_gate", "random", "all"])
def test_every_builtin_policy_builds_the_tiny_models(policy: str) -> None:
    # the tiny sizes go only to the policies that take them (fc has no hidden_size)
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=3, policy=policy)
    inputs = {m: torch.randn(1, 2, *s.shape) for m, s in model.input_spec.items()}
    assert model(inputs).logits.shape == (1, 3)


def test_a_plugin_modality_keeps_its_own_backbone_in_the_tiny_twin() -> None:
    from adamml.modalities import Modality
    from adamml.zoo import ModelRecipe, build_from_recipe

    depth = Modality(
        "depthx", channels=1, frames=8, size=(64, 64), recognition_backbone="resnet18_tsn"
    )
    adamml.register_modality(depth, override=True)
    try:
        recipe = ModelRecipe(("rgb", "depthx"), policy="all", tiny=True)
        model = build_from_recipe(recipe, num_classes=3)
        # rgb gets the tiny built-in; the plugin modality the ResNet-18 its Modality names
        assert model.router.backbone("depthx").num_features == 512
        assert model.router.backbone("rgb").num_features < 512
    finally:
        adamml.MODALITIES.unregister("depthx")


def test_a_modality_declares_its_tiny_twin() -> None:
    """The tiny twin is what ``Modality.tiny`` says, for a user's modality as for the built-ins
    (the builder holds no list of the paper's modalities)."""
    from adamml.modalities import Modality
    from adamml.zoo import ModelRecipe, build_from_recipe

    depth = Modality(
        "depthy",
        channels=1,
        frames=8,
        size=(64, 64),
        recognition_backbone="resnet18_tsn",
        tiny={"frames": 2, "size": (16, 16), "recognition_backbone": "tiny_tsn"},
    )
    adamml.register_modality(depth, override=True)
    try:
        model = build_from_recipe(
            ModelRecipe(("rgb", "depthy"), policy="all", tiny=True), num_classes=3
        )
        assert model.input_spec["depthy"].shape == (2, 1, 16, 16)
        assert model.input_spec["rgb"].shape == (4, 3, 32, 32)  # rgb's own declaration
        assert model.router.backbone("depthy").num_features == 192  # tiny_tsn, not ResNet-18
        full = build_from_recipe(ModelRecipe(("rgb", "depthy"), policy="all"), num_classes=3)
        assert full.input_spec["depthy"].shape == (8, 1, 64, 64)
    finally:
        adamml.MODALITIES.unregister("depthy")


def test_a_policy_declares_its_tiny_sizes() -> None:
    @POLICIES.register("test_small_lstm")
    class SmallLSTM(PolicyLSTM):
        tiny_args = {"joint_dim": 8, "hidden_size": 4}

    try:
        m = adamml.create_model("test_adamml_rgb_audio", num_classes=3, policy="test_small_lstm")
        assert (m.policy.joint_dim, m.policy.hidden_size) == (8, 4)
        own = adamml.create_model(
            "test_adamml_rgb_audio",
            num_classes=3,
            policy="test_small_lstm",
            policy_args={"hidden_size": 6},
        )
        assert own.policy.hidden_size == 6  # the user's arguments win
        builtin = adamml.create_model("test_adamml_rgb_audio", num_classes=3, policy="fc")
        assert builtin.policy.joint_dim == 64  # PolicyFC.tiny_args (no hidden_size: no LSTM)
    finally:
        POLICIES.unregister("test_small_lstm")


def test_a_recipes_policy_args_go_to_its_own_policy_only() -> None:
    from adamml.zoo import ModelRecipe, build_from_recipe

    recipe = ModelRecipe(("rgb", "audio"), policy="random", policy_args={"p": 0.25}, tiny=True)
    assert build_from_recipe(recipe, num_classes=3).policy.p == (0.25, 0.25)
    # another policy in its place does not get them (random's p would be a ConfigError to lstm)
    assert isinstance(build_from_recipe(recipe, num_classes=3, policy="lstm").policy, PolicyLSTM)
    alias = build_from_recipe(recipe, num_classes=3, policy="rng")  # the same policy
    assert alias.policy.p == (0.25, 0.25)
