from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import adamml
from adamml.backbones import NARROW_POLICY_BACKBONES
from adamml.errors import ConfigError, ShapeError, UnknownModelError


def _inputs(model, b=2, s=3):
    return {m: torch.randn(b, s, *spec.shape) for m, spec in model.input_spec.items()}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return adamml.create_model("test_adamml_rgb_audio", num_classes=5)


@pytest.mark.parametrize("b,s", [(1, 1), (3, 5)])
def test_output_shapes(tiny, b, s) -> None:
    out = tiny.eval()(_inputs(tiny, b, s))
    assert out.logits.shape == (b, 5)
    assert out.decisions.shape == (b, s, 2)
    assert out.policy_logits.shape == (b, s, 2, 2)
    assert out.gflops.shape == (b,)
    assert set(out.decisions.unique().tolist()) <= {0.0, 1.0}


def test_input_spec_matches_contract() -> None:
    full = adamml.create_model("adamml_rgb_audio", num_classes=31)
    assert full.input_spec["rgb"].shape == (8, 3, 224, 224)
    assert full.input_spec["audio"].shape == (1, 1, 256, 256)
    assert full.modalities == ("rgb", "audio")


def test_proxy_model_needs_rgbdiff_for_the_policy() -> None:
    m = adamml.create_model("test_adamml_rgb_flow_rgbdiff", num_classes=4)
    assert m.modalities == ("rgb", "flow")
    assert m.policy_modalities == ("rgb", "rgbdiff")
    assert set(m.input_spec) == {"rgb", "flow", "rgbdiff"}
    out = m.eval()(_inputs(m))
    assert out.decisions.shape[-1] == 2


def test_sound_alias_and_5d_audio(tiny) -> None:
    x = _inputs(tiny)
    x["sound"] = x.pop("audio")[:, :, 0]  # (B, S, 1, F, W), as the contract's table has it
    assert tiny.eval()(x).logits.shape == (2, 5)


def test_forced_decisions_are_used_and_checked(tiny) -> None:
    x = _inputs(tiny)
    d = torch.tensor([[[1.0, 0.0]] * 3, [[0.0, 1.0]] * 3])
    out = tiny.eval()(x, decisions=d)
    assert torch.equal(out.decisions, d)
    with pytest.raises(ShapeError, match=r"decisions must have shape \(B, S, M\)"):
        tiny(x, decisions=torch.ones(2, 3, 3))


def test_all_zero_decisions_give_zero_logits(tiny) -> None:
    out = tiny.eval()(_inputs(tiny), decisions=torch.zeros(2, 3, 2))
    assert torch.count_nonzero(out.logits) == 0


def test_missing_input_names_it(tiny) -> None:
    x = _inputs(tiny)
    del x["audio"]
    with pytest.raises(ShapeError, match="lack \\['audio'\\]"):
        tiny(x)


def test_every_parameter_gets_a_gradient_from_ce_plus_efficiency() -> None:
    torch.manual_seed(1)
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=4).train()
    x = _inputs(model, b=4, s=3)
    y = torch.tensor([0, 1, 2, 3])
    out = model(x)
    loss_fn = adamml.EfficiencyLoss(model.cost_weights, gamma=model.gamma)
    # efficiency gradient only flows where predictions are correct: make them all correct
    loss = F.cross_entropy(out.logits, y) + loss_fn(out.logits, out.decisions, out.logits.argmax(1))
    loss.backward()
    missing = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not torch.any(p.grad != 0))
    ]
    assert missing == []


def test_eval_is_deterministic(tiny) -> None:
    x = _inputs(tiny, 3, 4)
    tiny.eval()
    a, b = tiny(x), tiny(x)
    assert torch.equal(a.decisions, b.decisions)
    assert torch.equal(a.logits, b.logits)


def test_eval_skips_unselected_modalities(tiny) -> None:
    calls = {m: [] for m in tiny.modalities}
    hooks = [
        tiny.router.backbones[m].register_forward_hook(
            lambda mod, inp, out, m=m: calls[m].append(inp[0].shape[0])
        )
        for m in tiny.modalities
    ]
    try:
        d = torch.zeros(2, 3, 2)
        d[0, 1, 0] = d[1, 2, 0] = 1.0  # rgb on 2 segments, audio on none
        tiny.eval()(_inputs(tiny), decisions=d)
    finally:
        for h in hooks:
            h.remove()
    assert calls == {"rgb": [2], "audio": []}


def test_one_call_variant() -> None:
    m = adamml.create_model(
        "test_adamml_rgb_audio",
        num_classes=3,
        backbones={"audio": "tiny_tsn"},
        policy="joint_gate",
        fusion="max",
    )
    assert type(m.policy).__name__ == "JointGatePolicy"
    assert type(m.fusion).__name__ == "MaxFusion"
    assert m.eval()(_inputs(m)).logits.shape == (2, 3)


def test_bad_names_raise_typed_errors() -> None:
    with pytest.raises(UnknownModelError, match="did you mean"):
        adamml.create_model("adamml_rgb_audoi", num_classes=3)
    with pytest.raises(ConfigError, match="flow"):
        adamml.create_model("test_adamml_rgb_audio", num_classes=3, backbones={"flow": "tiny_tsn"})


def test_policy_backbones_choose_the_policy_extractors_by_name() -> None:
    torch.manual_seed(0)
    m = adamml.create_model(
        "test_adamml_rgb_audio",
        num_classes=3,
        policy_backbones={"rgb": "tiny_policy", "audio": "tiny_policy_resnet"},
    ).eval()
    default = adamml.create_model("test_adamml_rgb_audio", num_classes=3)
    extractors = m.policy.extractors()
    assert m.components["adamml.backbones"] == (
        "tiny_tsn",
        "tiny_audio",
        "tiny_policy",
        "tiny_policy_resnet",
    )

    def kinds(net: torch.nn.Module) -> set[str]:
        return {type(mod).__name__ for mod in net.modules()}

    # a StagedBackbone holds its body's stages: inverted residuals, or BasicBlocks
    assert "InvertedResidual" in kinds(extractors["rgb"])
    assert "BasicBlock" in kinds(extractors["audio"])
    assert "InvertedResidual" not in kinds(extractors["audio"])
    # the recognition networks are the model's own; only the policy's cost changes
    assert m.cost_table.recognition == default.cost_table.recognition
    assert m.cost_table.policy != default.cost_table.policy
    assert m(_inputs(m, 1, 2)).logits.shape == (1, 3)


def test_policy_backbones_errors_name_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match="policy does not look at"):
        adamml.create_model(
            "test_adamml_rgb_flow_rgbdiff", num_classes=3, policy_backbones={"flow": "tiny_policy"}
        )
    with pytest.raises(ConfigError, match="policy_backbones needs a policy"):
        adamml.create_model(
            "test_adamml_rgb_audio",
            num_classes=3,
            policy="all",
            policy_backbones={"rgb": "tiny_policy"},
        )
    with pytest.raises(adamml.errors.UnknownBackboneError):
        adamml.create_model(
            "test_adamml_rgb_audio", num_classes=3, policy_backbones={"rgb": "tiny_polcy"}
        )


def test_the_narrow_resnet10_policy_option_is_cheaper_than_the_papers_mobilenets() -> None:
    """The full-size option (docs/speed.md): fewer policy GMACs per segment than the paper's
    MobileNetV2s, the same decisions' shape, and no timm weights to pretend to load."""
    paper = adamml.create_model("adamml_rgb_audio", num_classes=4)
    option = adamml.create_model(
        "adamml_rgb_audio", num_classes=4, policy_backbones=NARROW_POLICY_BACKBONES
    )
    assert NARROW_POLICY_BACKBONES == {
        "rgb": "resnet10_narrow_policy",
        "audio": "resnet10_narrow_audio_policy",
    }
    assert option.components["adamml.backbones"] == (
        *paper.components["adamml.backbones"][:2],
        "resnet10_narrow_policy",
        "resnet10_narrow_audio_policy",
    )
    assert sum(option.cost_table.policy.values()) < sum(paper.cost_table.policy.values())
    assert option.cost_table.recognition == paper.cost_table.recognition
    rgb = option.policy.extractors()["rgb"]
    assert rgb.num_features == 256
    # the error names the part, and how to load the weights that do exist
    named = r"part 'policy.rgb' .*no pretrained weights.*'rgb': True"
    with pytest.raises(ConfigError, match=named):
        adamml.create_model(
            "adamml_rgb_audio",
            num_classes=4,
            policy_backbones={"rgb": "resnet10_narrow_policy"},
            pretrained={"policy.rgb": True},
        )


@pytest.mark.parametrize("name", adamml.list_models("test_*"))
def test_every_registered_model_builds_and_runs(name) -> None:
    m = adamml.create_model(name, num_classes=3).eval()
    out = m(_inputs(m, 1, 2))
    assert out.logits.shape == (1, 3)
    assert out.gflops.shape == (1,) and float(out.gflops) >= 0
    table = m.cost_table
    assert all(v > 0 for v in table.recognition.values())


@pytest.mark.parametrize("rate", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_count_gflops_agrees_with_out_gflops_and_backbones_run_on_selected_only(rate) -> None:
    torch.manual_seed(2)
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=4).eval()
    b, s = 2, 10
    x = _inputs(model, b, s)
    g = torch.Generator().manual_seed(int(rate * 100))
    d = torch.zeros(b, s, 2)
    for k, r in enumerate((rate, 0.9)):
        idx = torch.randperm(b * s, generator=g)[: round(r * b * s)]
        d[..., k].view(-1)[idx] = 1.0
    seen = {m: 0 for m in model.modalities}
    hooks = [
        model.router.backbones[m].register_forward_hook(
            lambda mod, inp, out, m=m: seen.__setitem__(m, seen[m] + inp[0].shape[0])
        )
        for m in model.modalities
    ]
    try:
        out = model(x, decisions=d)
    finally:
        for h in hooks:
            h.remove()
    assert seen == {m: int(d[..., k].sum()) for k, m in enumerate(model.modalities)}
    measured = adamml.count_gflops(model, x, decisions=d)
    assert measured == pytest.approx(float(out.gflops.mean()), rel=0.01)
