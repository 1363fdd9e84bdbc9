"""Cost accounting: the paper's per-segment constants, measured, and per-video counting."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange
from torch import Tensor, nn

from adamml.backbones import create_backbone
from adamml.errors import ConfigError
from adamml.flops import CostTable, CostTableError, count_gflops, measure_cost_table, measure_macs
from adamml.modalities import get_modality
from adamml.router import ModalityRouter

# reference §7 (utils/utils.py constants) and the paper's Tables 1-3 / 9, GMACs per segment
FULL = [
    ("resnet50_tsn", "rgb", (8, 3, 224, 224), 31, 14.136, 14.254),
    ("resnet50_tsn", "flow", (8, 10, 224, 224), 31, 16.339, None),
    ("resnet50_tsn", "rgbdiff", (8, 15, 224, 224), 31, 17.912, None),
    ("mobilenetv2_audio", "audio", (1, 1, 256, 256), 31, 0.3817, None),
    ("mobilenetv2_policy", "rgb", (4, 3, 160, 160), 0, 0.3754, None),
    ("mobilenetv2_audio_policy", "audio", (1, 1, 256, 256), 0, 0.3817, None),
]


@pytest.mark.parametrize("name,mod,shape,k,paper,everything", FULL)
def test_full_size_paper_constants(name, mod, shape, k, paper, everything) -> None:
    bb = create_backbone(name, modality=mod, num_classes=k)
    x = torch.zeros(1, *shape)
    assert measure_macs(bb, x) == pytest.approx(paper, rel=5e-3)
    if everything is not None:
        assert measure_macs(bb, x, convention="all") == pytest.approx(everything, rel=5e-3)


def test_lstm_cell_paper_convention_ignores_fed_back_logits() -> None:
    class Policy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTMCell(2048 + 4, 256)
            self.heads = nn.ModuleList([nn.Linear(256, 2), nn.Linear(256, 2)])

        def recurrent_feedback(self) -> dict[nn.Module, int]:
            return {self.lstm: 4}  # the policy declares its fed-back logits, whatever its names

        def forward(self, x: Tensor) -> Tensor:
            h, _ = self.lstm(x)
            return torch.stack([hd(h) for hd in self.heads])

    p = Policy()
    assert measure_macs(p, torch.zeros(1, 2052)) * 1e9 == 4 * 256 * (2048 + 256)  # 2,359,296
    assert measure_macs(p, torch.zeros(3, 2052)) * 1e9 == 3 * 2_359_296
    everything = measure_macs(p, torch.zeros(1, 2052), convention="all") * 1e9
    assert everything == 4 * 256 * (2052 + 256) + 2 * 256 * 2
    p.recurrent_feedback = dict  # an undeclared cell counts every input
    assert measure_macs(p, torch.zeros(1, 2052)) * 1e9 == 4 * 256 * (2052 + 256)


@pytest.mark.parametrize(
    "cls, feed, fed_back",
    [
        ("PolicyLSTM", True, 4),
        ("PolicyLSTM", False, 0),
        ("JointGatePolicy", True, 4),
        ("JointGatePolicy", False, 0),
    ],
)
def test_built_in_policies_declare_their_fed_back_logits(
    cls: str, feed: bool, fed_back: int
) -> None:
    from adamml import policies

    class Tiny(nn.Module):
        num_features = 4

        def __init__(self, c: int) -> None:
            super().__init__()
            self.fc = nn.Linear(c, 4)

        def forward(self, x: Tensor) -> Tensor:
            return self.fc(x.mean(dim=(1, 3, 4)))

    policy = getattr(policies, cls)(
        ("rgb", "audio"),
        backbones={"rgb": Tiny(3), "audio": Tiny(1)},
        joint_dim=8,
        hidden_size=6,
        feed_logits=feed,
    )
    views = {"rgb": torch.zeros(1, 1, 2, 3, 4, 4), "audio": torch.zeros(1, 1, 1, 1, 4, 4)}
    cell = next(m for m in policy.modules() if isinstance(m, nn.LSTMCell))
    assert policy.recurrent_feedback() == {cell: fed_back}
    assert cell.input_size == 8 + fed_back
    assert measure_macs(policy, views) * 1e9 == 4 * 6 * (8 + 6)  # joint_dim + hidden only
    assert (
        policies.PolicyFC(("rgb",), backbones={"rgb": Tiny(3)}, joint_dim=8).recurrent_feedback()
        == {}
    )


def test_measuring_restores_mode_and_grad_and_handles_the_quirk() -> None:
    bb = create_backbone(
        "timm:test_vit3",
        modality=get_modality("rgb").replace(frames=1, size=(160, 160)),
        num_classes=2,
    ).train()
    assert measure_macs(bb, torch.zeros(1, 1, 3, 160, 160), convention="all") > 0
    assert bb.training and all(p.requires_grad for p in bb.parameters())
    with pytest.raises(ConfigError, match="convention"):
        measure_macs(bb, torch.zeros(1, 1, 3, 160, 160), convention="fvcore")


def test_cost_table_per_video_by_hand() -> None:
    t = CostTable({"rgb": 14.136, "audio": 0.3817}, {"rgb": 0.3754, "audio": 0.3817}, 0.0024)
    assert t.policy_total == pytest.approx(0.7595)
    # the weighted-fusion baseline (no policy) at 10 segments: 145.17 in the paper
    assert 10 * t.recognition_total == pytest.approx(145.17, abs=0.01)
    d = torch.zeros(2, 10, 2)
    d[0, :, 0] = 1.0  # video 0: RGB on every segment; video 1: nothing
    d[0, :4, 1] = 1.0
    out = t.per_video(d)
    assert out.shape == (2,)
    assert out[0].item() == pytest.approx(10 * 14.136 + 4 * 0.3817 + 10 * 0.7595, rel=1e-6)
    assert out[1].item() == pytest.approx(10 * 0.7595, rel=1e-6)  # policy only
    assert t.per_video({"rgb": 0.5, "audio": 1.0}, segments=10) == pytest.approx(
        10 * (7.068 + 0.3817 + 0.7595)
    )
    with pytest.raises(CostTableError):
        t.per_video({"flow": 1.0}, segments=10)
    with pytest.raises(ConfigError):
        t.per_video({"rgb": 1.0})


TINY = {
    "rgb": get_modality("rgb").replace(frames=4, size=(32, 32), policy_size=(24, 24)),
    "flow": get_modality("flow").replace(frames=4, size=(32, 32), policy_size=(24, 24)),
    "audio": get_modality("audio").replace(size=(32, 32)),
}


class _Policy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbones = nn.ModuleDict(
            {
                "rgb": create_backbone("tiny_policy", modality=TINY["rgb"]),
                "audio": create_backbone("tiny_audio_policy", modality=TINY["audio"]),
            }
        )
        self.lstm = nn.LSTMCell(256 + 4, 32)
        self.heads = nn.ModuleList([nn.Linear(32, 2), nn.Linear(32, 2)])

    def recurrent_feedback(self) -> dict[nn.Module, int]:
        return {self.lstm: 4}


class StandIn(nn.Module):
    """A minimal AdaMML-shaped model: fixed policy features, real skipping in eval."""

    def __init__(self) -> None:
        super().__init__()
        self.modalities = ("rgb", "audio")
        self.policy_modalities = ("rgb", "audio")
        self.specs = {m: TINY[m] for m in self.modalities}
        self.router = ModalityRouter(
            {
                "rgb": create_backbone("tiny_tsn", modality=TINY["rgb"], num_classes=3),
                "audio": create_backbone("tiny_audio", modality=TINY["audio"], num_classes=3),
            }
        )
        self.policy = _Policy()
        self.policy.forward = self._policy  # type: ignore[method-assign]

    @property
    def input_spec(self) -> dict:
        return {m: self.specs[m].input_spec for m in self.modalities}

    def policy_extractors(self) -> dict[str, nn.Module]:
        return dict(self.policy.backbones.items())

    def policy_views(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        return {m: self.specs[m].policy_view(inputs[m]) for m in self.policy_modalities}

    def _policy(self, views: dict[str, Tensor]) -> Tensor:
        b, s = views["rgb"].shape[:2]
        feats = torch.cat(
            [
                self.policy.backbones[m](rearrange(v, "b s ... -> (b s) ..."))
                for m, v in views.items()
            ],
            dim=1,
        )
        feats = rearrange(feats, "(b s) d -> b s d", b=b)
        h = c = feats.new_zeros(b, 32)
        prev = feats.new_zeros(b, 4)
        for t in range(s):
            h, c = self.policy.lstm(torch.cat([feats[:, t], prev], 1), (h, c))
            prev = torch.cat([hd(h) for hd in self.policy.heads], 1)
        return feats

    def forward(self, inputs: dict[str, Tensor], decisions: Tensor) -> Tensor:
        self.policy(self.policy_views(inputs))
        out = []
        for k, m in enumerate(self.modalities):
            sel = decisions[..., k].nonzero(as_tuple=True)
            if len(sel[0]):
                out.append(self.router.backbones[m](inputs[m][sel]).sum())
        return torch.stack(out).sum() if out else torch.zeros(())


def test_tiny_cost_proportions_match_the_paper() -> None:
    x = {m: torch.zeros(1, *TINY[m].input_spec.shape) for m in TINY}
    rgb = measure_macs(create_backbone("tiny_tsn", modality=TINY["rgb"]), x["rgb"])
    flow = measure_macs(create_backbone("tiny_tsn", modality=TINY["flow"]), x["flow"])
    audio = measure_macs(create_backbone("tiny_audio", modality=TINY["audio"]), x["audio"])
    table = measure_cost_table(StandIn())
    assert 1e-3 <= rgb <= 6e-3  # 1-6 MMACs per segment
    assert flow / rgb == pytest.approx(16.339 / 14.136, rel=0.03)
    assert audio / rgb == pytest.approx(0.3817 / 14.136, abs=0.01)
    assert table.policy_total / rgb == pytest.approx(0.7595 / 14.136, abs=0.01)


def test_count_gflops_equals_the_cost_table() -> None:
    model = StandIn()
    table = measure_cost_table(model)
    b, s = 2, 3
    inputs = {m: torch.randn(b, s, *TINY[m].input_spec.shape) for m in model.modalities}
    d = torch.tensor([[[1, 1], [0, 1], [0, 0]], [[1, 0], [0, 0], [1, 1]]], dtype=torch.float32)
    measured = count_gflops(model, inputs, d)
    assert measured == pytest.approx(table.per_video(d).mean().item(), rel=1e-6)
    none = count_gflops(model, inputs, torch.zeros(b, s, 2))
    assert none == pytest.approx(s * table.policy_total, rel=1e-6)  # only the policy runs
    per = count_gflops(model, inputs, d, per_video=True)
    assert per.shape == (b,)
    assert count_gflops(model, inputs, d, convention="all") > measured
