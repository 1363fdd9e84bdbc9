"""LiteEval assembled from adamml's blocks (`adamml.liteeval`): shapes, gradients, the coarse
path on every segment and the fine path only where the gate chose it, its cost accounting."""

from __future__ import annotations

import pytest
import torch

import adamml
from adamml.errors import ConfigError, ShapeError
from adamml.liteeval import LiteEval

K = 4


@pytest.fixture
def model() -> LiteEval:
    torch.manual_seed(0)
    return adamml.create_model("test_liteeval_rgb", num_classes=K)


def _inputs(model: LiteEval, b: int = 2, s: int = 3) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {"rgb": torch.randn(b, s, *model.input_spec["rgb"].shape)}


def _count_fine_segments(model: LiteEval) -> tuple[list[int], object]:
    """A forward hook on the fine backbone's stem: frames it saw per call, as segments."""
    frames = model.specs["rgb"].frames
    seen: list[int] = []
    stem = model.router.backbone("rgb").conv1
    handle = stem.register_forward_hook(
        lambda mod, args, out: seen.append(args[0].shape[0] // frames)
    )
    return seen, handle


def test_outputs_have_adamml_shapes_in_training_and_evaluation(model) -> None:
    x = _inputs(model, 2, 5)
    for out in (model.train()(x), model.eval()(x)):
        assert out.logits.shape == (2, K)
        assert out.decisions.shape == (2, 5, 1)
        assert out.policy_logits.shape == (2, 5, 1, 2)
        assert ((out.decisions == 0) | (out.decisions == 1)).all()
        assert out.gflops.shape == (2,) and torch.isfinite(out.gflops).all()


def test_every_part_learns_from_the_loss(model) -> None:
    out = model.train()(_inputs(model))
    (out.logits.logsumexp(-1).sum() + out.decisions.sum()).backward()
    for part in (model.policy.head, model.policy.lstm, model.policy.backbones["rgb"]):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    for part in (model.fusion.lstm, model.fusion.classifier, model.router.backbone("rgb").conv1):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def test_the_fine_backbone_runs_only_on_the_chosen_segments_in_eval(model) -> None:
    model.configure_inference(enabled=False).eval()  # the plain modules, so the hook fires
    x = _inputs(model, 2, 4)
    d = torch.zeros(2, 4, 1)
    d[0, 1, 0] = d[1, 1, 0] = d[1, 3, 0] = 1.0
    seen, handle = _count_fine_segments(model)
    try:
        with torch.no_grad():
            forced = model(x, decisions=d)
            none = model(x, decisions=torch.zeros(2, 4, 1))
            own = model(x)
    finally:
        handle.remove()
    chosen = int(own.decisions.sum())
    # one call per segment with a choice, batching the videos that chose it
    assert seen[:2] == [2, 1]
    assert sum(seen[2:]) == chosen
    assert torch.equal(forced.decisions, d)
    table = model.cost_table
    assert torch.allclose(none.gflops, torch.full((2,), 4 * table.policy_total))
    assert torch.allclose(
        forced.gflops, 4 * table.policy_total + d.sum(dim=(1, 2)) * table.recognition["rgb"]
    )


def test_skipped_segments_copy_the_coarse_state_and_ignore_the_fine_network(model) -> None:
    model.eval()
    x = _inputs(model)
    skip, use = torch.zeros(2, 3, 1), torch.ones(2, 3, 1)
    with torch.no_grad():
        before = model(x, decisions=skip).logits, model(x, decisions=use).logits
        for p in model.router.backbone("rgb").parameters():
            p.add_(0.5)
        after = model(x, decisions=skip).logits, model(x, decisions=use).logits
    assert torch.equal(before[0], after[0])  # all skipped: the fine network does not matter
    assert not torch.allclose(before[1], after[1])


def test_count_gflops_agrees_with_the_cost_table(model) -> None:
    model.eval()
    x = _inputs(model, 2, 5)
    d = torch.zeros(2, 5, 1)
    d[0, :3, 0] = d[1, 4, 0] = 1.0
    out = model(x, decisions=d)
    measured = adamml.count_gflops(model, x, decisions=d)
    assert measured == pytest.approx(float(out.gflops.mean()), rel=1e-6)


def test_the_full_size_model_is_mobilenet_coarse_and_resnet50_fine() -> None:
    with torch.device("meta"):
        model = adamml.create_model("liteeval_rgb", num_classes=200)
    assert model.specs["rgb"].policy_size == (112, 112)
    assert model.components["adamml.backbones"] == ("resnet50_tsn", "mobilenetv2_policy")
    assert model.policy.hidden_size == 512 and model.fusion.hidden_size == 2048


def test_what_liteeval_cannot_do_is_a_config_error(model) -> None:
    with pytest.raises(ConfigError, match=r"does not take \['policy'\]"):
        adamml.create_model("test_liteeval_rgb", num_classes=K, policy="lstm")
    with pytest.raises(ConfigError):
        model.eval().stream()
    with pytest.raises(ShapeError, match=r"\(B, S, 1\)"):
        model(_inputs(model), decisions=torch.ones(2, 3, 2))
    with pytest.raises(ConfigError, match="at least as wide"):
        adamml.create_model("test_liteeval_rgb", num_classes=K, coarse_hidden=64)


def test_the_docs_page_example_runs() -> None:
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "components" / "liteeval.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, str(page), "exec"), {})  # noqa: S102


def test_backbone_overrides_name_the_one_modality() -> None:
    model = adamml.create_model("test_liteeval_rgb", num_classes=K, backbones={"rgb": "tiny_tsn"})
    assert model.router.modalities == ("rgb",)
    with pytest.raises(ConfigError, match="recognises only 'rgb'"):
        adamml.create_model("test_liteeval_rgb", num_classes=K, backbones={"audio": "tiny_tsn"})


def test_pretrained_weights_reach_both_backbones(tmp_path) -> None:
    torch.manual_seed(3)
    donor = adamml.create_model("test_liteeval_rgb", num_classes=K)
    cheap, expensive = tmp_path / "cheap.pth", tmp_path / "expensive.pth"
    torch.save(donor.policy.backbones["rgb"].state_dict(), cheap)
    torch.save(donor.router.backbone("rgb").state_dict(), expensive)
    model = adamml.create_model(
        "test_liteeval_rgb",
        num_classes=K,
        pretrained={"rgb": str(expensive), "policy.rgb": str(cheap)},
    )
    for ours, theirs in (
        (model.policy.backbones["rgb"], donor.policy.backbones["rgb"]),
        (model.router.backbone("rgb"), donor.router.backbone("rgb")),
    ):
        first = next(iter(theirs.state_dict()))
        assert torch.equal(ours.state_dict()[first], theirs.state_dict()[first])
    with pytest.raises(ConfigError, match="not parts of this model"):
        adamml.create_model("test_liteeval_rgb", num_classes=K, pretrained={"audio": True})
