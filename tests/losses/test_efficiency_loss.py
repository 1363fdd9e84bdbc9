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
