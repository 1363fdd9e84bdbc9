"""Hand-computed values for every fusion on B=1, S=2, M=2 (rgb, audio), K=3.

Segment 0 uses both modalities; segment 1 uses only audio (rgb skipped).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from adamml.errors import ConfigError, ShapeError, UnknownFusionError
from adamml.fusion import (
    AverageFusion,
    ClasswiseFusion,
    FC2Fusion,
    LearnableLateFusion,
    MaxFusion,
    create_fusion,
    list_fusions,
)

MODS = ("rgb", "audio")
Z = {
    "rgb": torch.tensor([[[1.0, 2.0, 3.0], [4.0, -5.0, 6.0]]]),
    "audio": torch.tensor([[[-1.0, 0.0, 2.0], [3.0, 1.0, -2.0]]]),
}
D = torch.tensor([[[1.0, 1.0], [0.0, 1.0]]])


def t(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor([rows])


def test_learnable_init_and_values():
    fusion = LearnableLateFusion(MODS)
    assert fusion.weight.shape == (1,)
    torch.testing.assert_close(fusion.weights, torch.tensor([0.5, 0.5]))
    # no renormalisation: the audio-only segment is 0.5 * z_audio
    torch.testing.assert_close(fusion(Z, D), t([[0.0, 1.0, 2.5], [1.5, 0.5, -1.0]]))
    with torch.no_grad():
        fusion.weight.fill_(0.8)  # the last modality gets the complement, 0.2
    torch.testing.assert_close(fusion.weights, torch.tensor([0.8, 0.2]))
    torch.testing.assert_close(fusion(Z, D), t([[0.6, 1.6, 2.8], [0.6, 0.2, -0.4]]))


def test_learnable_three_modalities_raw_weights():
    fusion = LearnableLateFusion(("rgb", "flow", "audio"))
    assert fusion.weight.shape == (2,)
    torch.testing.assert_close(fusion.weights, torch.full((3,), 1 / 3))
    with torch.no_grad():
        fusion.weight.copy_(torch.tensor([0.5, 0.7]))
    # used raw: the complement may be negative
    torch.testing.assert_close(fusion.weights, torch.tensor([0.5, 0.7, -0.2]))


def test_learnable_normalized():
    fusion = LearnableLateFusion(MODS, normalized=True)
    assert fusion.weight.shape == (2,)
    torch.testing.assert_close(fusion.weights, torch.tensor([0.5, 0.5]))
    with torch.no_grad():
        fusion.weight.copy_(torch.tensor([math.log(3.0), 0.0]))
    torch.testing.assert_close(fusion.weights, torch.tensor([0.75, 0.25]))
    torch.testing.assert_close(fusion(Z, D), t([[0.5, 1.5, 2.75], [0.75, 0.25, -0.5]]))


def test_average():
    torch.testing.assert_close(AverageFusion(MODS)(Z, D), t([[0.0, 1.0, 2.5], [1.5, 0.5, -1.0]]))
    renorm = AverageFusion(MODS, renormalize=True)
    torch.testing.assert_close(renorm(Z, D), t([[0.0, 1.0, 2.5], [3.0, 1.0, -2.0]]))
    assert torch.all(renorm(Z, torch.zeros(1, 2, 2)) == 0)


def test_classwise():
    fusion = ClasswiseFusion(MODS, num_classes=3)
    torch.testing.assert_close(fusion.weight, torch.full((2, 3), 0.5))
    torch.testing.assert_close(fusion(Z, D), AverageFusion(MODS)(Z, D))
    with torch.no_grad():
        fusion.weight.copy_(torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]]))
    torch.testing.assert_close(fusion(Z, D), t([[1.0, 0.0, 2.5], [0.0, 1.0, -1.0]]))


def test_max_excludes_skipped():
    fusion = MaxFusion(MODS)
    # segment 1: rgb (4, -5, 6) is skipped, so audio wins everywhere, even its -2 over a zero
    torch.testing.assert_close(fusion(Z, D), t([[1.0, 2.0, 3.0], [3.0, 1.0, -2.0]]))
    none = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    torch.testing.assert_close(fusion(Z, none), t([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]))


def test_fc2_hand_set_weights():
    fusion = FC2Fusion(MODS, {"rgb": 2, "audio": 1}, num_classes=3, hidden=3).eval()
    assert fusion.input_kind == "features" and fusion.output_dim == 3
    lin0, lin1, lin2 = fusion.mlp[0], fusion.mlp[2], fusion.mlp[5]
    with torch.no_grad():
        lin0.weight.copy_(torch.eye(3))
        lin0.bias.zero_()
        lin1.weight.copy_(torch.eye(3))
        lin1.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))
        lin2.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]))
        lin2.bias.copy_(torch.tensor([0.5, 0.0, 0.0]))
    feats = {
        "rgb": torch.tensor([[[1.0, -2.0], [3.0, 4.0]]]),
        "audio": torch.tensor([[[5.0], [-6.0]]]),
    }
    # seg 0: [1, -2, 5] -> relu [1, 0, 5] -> +b [1, 0, 6] -> [1.5, 6, 7]
    # seg 1: rgb skipped [0, 0, -6] -> relu 0 -> [0, 0, 1] -> [0.5, 1, 1]
    torch.testing.assert_close(fusion(feats, D), t([[1.5, 6.0, 7.0], [0.5, 1.0, 1.0]]))


def _all_fusions() -> list[nn.Module]:
    return [
        LearnableLateFusion(MODS),
        LearnableLateFusion(MODS, normalized=True),
        AverageFusion(MODS),
        AverageFusion(MODS, renormalize=True),
        ClasswiseFusion(MODS, num_classes=3),
        MaxFusion(MODS),
    ]


@pytest.mark.parametrize("fusion", _all_fusions(), ids=lambda f: f.extra_repr())
def test_gradient_reaches_parameters_and_inputs_not_decisions(fusion):
    z = {k: v.clone().requires_grad_(True) for k, v in Z.items()}
    d = D.clone().requires_grad_(True)
    out = fusion(z, d)
    assert out.shape == (1, 2, 3) and torch.isfinite(out).all()
    (out * torch.arange(1.0, 4.0)).pow(2).sum().backward()
    for name, p in fusion.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0 for v in z.values())
    assert d.grad is None  # the decisions are a detached mask; the router carries their gradient


def test_router_then_fusion_multiplies_by_the_decision_once():
    """As in the reference, d video_logits / d u_{s,k} = w_k z_{s,k}: one multiplication by u."""
    z = {k: v.clone() for k, v in Z.items()}
    d = torch.ones(1, 2, 2, requires_grad=True)
    masked = {k: z[k] * d[..., i : i + 1] for i, k in enumerate(MODS)}  # what the router returns
    LearnableLateFusion(MODS)(masked, d).sum().backward()
    # w = 0.5: rgb 0.5 * (1+2+3), 0.5 * (4-5+6); audio 0.5 * (-1+0+2), 0.5 * (3+1-2)
    torch.testing.assert_close(d.grad, torch.tensor([[[3.0, 0.5], [2.5, 1.0]]]))


def test_fc2_gradient_reaches_every_parameter():
    fusion = FC2Fusion(MODS, {"rgb": 4, "audio": 2}, num_classes=3, hidden=8, dropout=0.0)
    feats = {"rgb": torch.randn(2, 3, 4), "audio": torch.randn(2, 3, 2)}
    fusion(feats, torch.ones(2, 3, 2)).pow(2).sum().backward()
    for name, p in fusion.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("b,s,mods", [(2, 5, ("rgb",)), (3, 1, ("rgb", "flow", "audio"))])
def test_shapes(b, s, mods):
    z = {m: torch.randn(b, s, 7) for m in mods}
    d = (torch.rand(b, s, len(mods)) > 0.5).float()
    for fusion in (
        LearnableLateFusion(mods),
        AverageFusion(mods),
        MaxFusion(mods),
        ClasswiseFusion(mods, num_classes=7),
    ):
        assert fusion(z, d).shape == (b, s, 7)


def test_registry_names_resolve():
    assert {"learnable", "average", "classwise", "max", "fc2"} <= set(list_fusions())
    expected = {
        "learnable": LearnableLateFusion,
        "weighted": LearnableLateFusion,
        "average": AverageFusion,
        "mean": AverageFusion,
        "max": MaxFusion,
        "classwise": ClasswiseFusion,
    }
    for name, cls in expected.items():
        kwargs = {"num_classes": 3}
        assert type(create_fusion(name, modalities=MODS, **kwargs)) is cls
    fc2 = create_fusion(
        "fc2", modalities=MODS, feature_dims={"rgb": 2, "sound": 1}, num_classes=3, hidden=4
    )
    assert isinstance(fc2, FC2Fusion) and fc2.feature_dims == {"rgb": 2, "audio": 1}
    with pytest.raises(UnknownFusionError, match="learnable"):
        create_fusion("learnabel", modalities=MODS)
    with pytest.raises(ConfigError, match="renormalize"):
        create_fusion("max", modalities=MODS, renormalize=True)


def test_sound_alias_and_validation():
    fusion = AverageFusion(("rgb", "sound"))
    assert fusion.modalities == ("rgb", "audio")
    fusion({"rgb": Z["rgb"], "sound": Z["audio"]}, D)
    with pytest.raises(ShapeError, match="'audio'"):
        fusion({"rgb": Z["rgb"]}, D)
    with pytest.raises(ShapeError, match="M=2"):
        fusion(Z, torch.ones(1, 2, 3))
    with pytest.raises(ShapeError, match="same number of classes"):
        fusion({"rgb": Z["rgb"], "audio": torch.zeros(1, 2, 4)}, D)
    with pytest.raises(ShapeError, match="K=5"):
        AverageFusion(MODS, num_classes=5)(Z, D)
    with pytest.raises(ConfigError, match="feature_dims"):
        FC2Fusion(MODS, {"rgb": 2}, num_classes=3)
