"""EfficiencyLoss (AdaMML Eq. 4 as the reference computes it): hand-computed values, gradients."""

from __future__ import annotations

import pytest
import torch

from adamml.errors import ConfigError, ShapeError
from adamml.losses import EfficiencyLoss

WEIGHTS = {"rgb": 1.0, "audio": 0.05}
# B=4, K=3: videos 0 and 1 are predicted correctly, 2 and 3 wrongly
LOGITS = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
TARGET = torch.tensor([0, 1, 2, 0])
# (B, S=2, M=2): [rgb, audio] per segment
DECISIONS = torch.tensor(
    [
        [[1.0, 0.0], [1.0, 1.0]],  # f = (1.0, 0.5)
        [[0.0, 1.0], [1.0, 1.0]],  # f = (0.5, 1.0)
        [[1.0, 1.0], [1.0, 1.0]],  # f = (1.0, 1.0)
        [[0.0, 1.0], [0.0, 0.0]],  # f = (0.0, 0.5)
    ]
)


def test_blockdrop_hand_computed():
    loss_fn = EfficiencyLoss(WEIGHTS, gamma=10.0)
    terms = loss_fn.components(LOGITS, DECISIONS, TARGET)
    # rgb: 1.0 * mean(1*1^2, 1*0.5^2, 0, 0) = 0.3125; audio: 0.05 * mean(0.25, 1, 0, 0) = 0.015625
    torch.testing.assert_close(terms.cost, torch.tensor(0.328125))
    torch.testing.assert_close(terms.gamma_term, torch.tensor(5.0))  # mean(0, 0, 10, 10)
    torch.testing.assert_close(terms.loss, torch.tensor(5.328125))
    torch.testing.assert_close(loss_fn(LOGITS, DECISIONS, TARGET), torch.tensor(5.328125))
    assert terms.correct.tolist() == [True, True, False, False]
    torch.testing.assert_close(terms.fractions["rgb"], torch.tensor(0.625))
    torch.testing.assert_close(terms.fractions["audio"], torch.tensor(0.75))


def test_blockdrop_gradient_hand_computed():
    d = DECISIONS.clone().requires_grad_(True)
    EfficiencyLoss(WEIGHTS)(LOGITS, d, TARGET).backward()
    # d/du_{n,s,k} = lambda_k * c_n * 2 f_{n,k} / (S * B)
    expected = torch.tensor([[1.0, 0.025], [0.5, 0.05], [0.0, 0.0], [0.0, 0.0]]) * 2 / 8
    torch.testing.assert_close(d.grad, expected.unsqueeze(1).expand(4, 2, 2))


def _straight_through(p: torch.Tensor) -> torch.Tensor:
    soft = torch.sigmoid(p)
    return (soft > 0.5).float() - soft.detach() + soft


def test_policy_gradient_is_zero_when_every_prediction_is_wrong():
    p = torch.randn(4, 2, 2, requires_grad=True)
    wrong = torch.tensor([1, 0, 2, 0])  # argmax is (0, 1, 0, 2)
    loss = EfficiencyLoss(WEIGHTS, gamma=10.0)(LOGITS, _straight_through(p), wrong)
    assert loss.item() == 10.0
    loss.backward()
    assert torch.equal(p.grad, torch.zeros_like(p))
    # the same policy gets a gradient once some prediction is right
    p.grad = None
    EfficiencyLoss(WEIGHTS)(LOGITS, _straight_through(p), TARGET).backward()
    assert p.grad.abs().sum() > 0


def test_multilabel_target():
    multi_hot = torch.tensor([[1, 0, 1], [1, 0, 1], [1, 0, 1], [0, 0, 1]])
    terms = EfficiencyLoss(WEIGHTS).components(LOGITS, DECISIONS, multi_hot)
    # argmax = (0, 1, 0, 2): correct, wrong, correct, correct
    assert terms.correct.tolist() == [True, False, True, True]
    rgb = (1.0 + 0 + 1.0 + 0.0) / 4
    audio = 0.05 * (0.25 + 0 + 1.0 + 0.25) / 4
    torch.testing.assert_close(terms.loss, torch.tensor(rgb + audio + 10.0 / 4))


def test_mean_penalty():
    loss_fn = EfficiencyLoss(WEIGHTS, penalty="mean")
    # 1.0 * 0.625 + 0.05 * 0.75; no gating, no gamma, target optional
    torch.testing.assert_close(loss_fn(LOGITS, DECISIONS, TARGET), torch.tensor(0.6625))
    torch.testing.assert_close(loss_fn(LOGITS, DECISIONS), torch.tensor(0.6625))


def test_modality_order_and_alias():
    flipped = DECISIONS.flip(-1)
    by_order = EfficiencyLoss(WEIGHTS, modalities=("audio", "rgb"))
    assert by_order.cost_weights == {"audio": 0.05, "rgb": 1.0}
    torch.testing.assert_close(by_order(LOGITS, flipped, TARGET), torch.tensor(5.328125))
    alias = EfficiencyLoss({"rgb": 1.0, "sound": 0.05})
    assert alias.modalities == ("rgb", "audio")
    torch.testing.assert_close(alias(LOGITS, DECISIONS, TARGET), torch.tensor(5.328125))


def test_errors():
    with pytest.raises(ConfigError, match="flow"):
        EfficiencyLoss(WEIGHTS, modalities=("rgb", "flow"))
    with pytest.raises(ConfigError, match="penalty"):
        EfficiencyLoss(WEIGHTS, penalty="l1")
    loss_fn = EfficiencyLoss(WEIGHTS)
    with pytest.raises(ShapeError, match="M=2"):
        loss_fn(LOGITS, torch.ones(4, 2, 3), TARGET)
    with pytest.raises(ShapeError, match="target"):
        loss_fn(LOGITS, DECISIONS)
    with pytest.raises(ShapeError, match="target"):
        loss_fn(LOGITS, DECISIONS, torch.zeros(3, dtype=torch.long))


def _reference_cost(decisions: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """The blockdrop cost as written before other shapes were accepted (mean over dim 1)."""
    frac = decisions.mean(dim=1)
    lam = torch.tensor([1.0, 0.05])
    return (lam * (correct.float().unsqueeze(1) * frac.pow(2)).mean(dim=0)).sum()


def test_bsm_is_bit_identical_to_the_mean_over_segments():
    torch.manual_seed(0)
    logits = torch.randn(6, 5)
    target = logits.argmax(-1).clone()
    target[:2] = (target[:2] + 1) % 5  # two wrong
    loss_fn = EfficiencyLoss(WEIGHTS)
    for decisions in (
        torch.rand(6, 7, 2),
        torch.rand(6, 2, 7).transpose(1, 2),  # not contiguous
        (torch.rand(6, 3, 2) > 0.5).float(),
    ):
        terms = loss_fn.components(logits, decisions, target)
        assert torch.equal(terms.cost, _reference_cost(decisions, terms.correct))
        assert torch.equal(terms.fractions["rgb"], decisions.mean(dim=1)[:, 0].mean())


def test_any_middle_axes_are_averaged():
    torch.manual_seed(0)
    loss_fn = EfficiencyLoss(WEIGHTS)
    d = torch.rand(4, 3, 5, 2)  # (B, S, L, M): e.g. several gated blocks per segment
    flat = loss_fn(LOGITS, d.reshape(4, 15, 2), TARGET)
    torch.testing.assert_close(loss_fn(LOGITS, d, TARGET), flat)
    # (B, M): one decision per sample is (B, S=1, M)
    per_sample = DECISIONS[:, 0]
    torch.testing.assert_close(
        loss_fn(LOGITS, per_sample, TARGET), loss_fn(LOGITS, per_sample.unsqueeze(1), TARGET)
    )
    # hand-computed: f = decisions; rgb 1.0 * mean(1, 0, 0, 0), audio 0.05 * mean(0, 1, 0, 0)
    terms = loss_fn.components(LOGITS, per_sample, TARGET)
    torch.testing.assert_close(terms.cost, torch.tensor(0.25 + 0.05 * 0.25))


def test_one_modality_may_leave_out_the_m_axis():
    loss_fn = EfficiencyLoss({"expensive": 0.1}, penalty="mean")
    assert loss_fn.modalities == ("expensive",)
    u = torch.tensor([1.0, 0.0, 1.0, 1.0], requires_grad=True)  # (B,), e.g. gate(logits)[:, 1]
    loss = loss_fn(LOGITS, u)
    torch.testing.assert_close(loss, torch.tensor(0.1 * 0.75))
    loss.backward()
    torch.testing.assert_close(u.grad, torch.full((4,), 0.1 / 4))
    blockdrop = EfficiencyLoss({"expensive": 0.1})
    d = torch.rand(4, 3)
    # (B, S), (B, S, 1) and (B, S, 1, 1) read the same
    expected = blockdrop(LOGITS, d.unsqueeze(-1), TARGET)
    for shape in ((4, 3), (4, 3, 1, 1), (4, 1, 3)):
        torch.testing.assert_close(blockdrop(LOGITS, d.reshape(shape), TARGET), expected)
    # f_n = u_n: 0.1 * mean(c_n * u_n^2) = 0.1 * (1 + 0) / 4, plus gamma for the two wrong
    torch.testing.assert_close(
        blockdrop.components(LOGITS, u.detach(), TARGET).cost, torch.tensor(0.025)
    )


def test_shape_errors_name_the_tensor():
    loss_fn = EfficiencyLoss(WEIGHTS)
    with pytest.raises(ShapeError, match=r"decisions must be \(B, \.\.\., M=2\).*got \(4,\)"):
        loss_fn(LOGITS, torch.ones(4), TARGET)
    with pytest.raises(ShapeError, match=r"decisions .*\['rgb', 'audio'\].*got \(4, 3, 1\)"):
        loss_fn(LOGITS, torch.ones(4, 3, 1), TARGET)
    with pytest.raises(ShapeError, match="float"):
        loss_fn(LOGITS, torch.ones(4, 2, dtype=torch.long), TARGET)
    with pytest.raises(ShapeError, match=r"logits must be \(B=3, K\)"):
        loss_fn(LOGITS, torch.ones(3, 2), TARGET)
    with pytest.raises(ShapeError, match=r"\(B,\) or \(B, \.\.\.\) also works"):
        EfficiencyLoss({"rgb": 1.0})(LOGITS, torch.tensor(1.0), TARGET)
