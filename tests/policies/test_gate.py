"""GumbelGate: hand-computed forward and straight-through gradient, eval modes, temperature."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from adamml.errors import ConfigError, ShapeError
from adamml.policies import GumbelGate
from adamml.policies.gate import gumbel_noise


def test_hand_computed_sample_and_straight_through_gradient() -> None:
    gate = GumbelGate(tau=2.0)  # training mode by default
    logits = torch.tensor([[1.0, 0.0], [0.0, 0.5], [2.0, 0.0]], requires_grad=True)
    noise = torch.tensor([[0.0, 2.0], [0.3, 0.0], [0.0, 1.0]])
    y = gate(logits, noise=noise)
    # logits + noise = [[1, 2], [0.3, 0.5], [2, 1]] -> argmax 1, 1, 0
    assert y.tolist() == [[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]
    y[:, 1].sum().backward()
    # d softmax((z+g)/tau)[1] / dz = (1/tau) p (1-p) * (-1, +1), p = sigmoid((z1+g1-z0-g0)/tau)
    # row 0: p = sigmoid(0.5)  = 0.6224593, p(1-p)/2 = 0.1175019
    # row 1: p = sigmoid(0.1)  = 0.5249792, p(1-p)/2 = 0.1246880
    # row 2: p = sigmoid(-0.5) = 0.3775407, p(1-p)/2 = 0.1175019
    expected = torch.tensor(
        [[-0.1175019, 0.1175019], [-0.1246880, 0.1246880], [-0.1175019, 0.1175019]]
    )
    torch.testing.assert_close(logits.grad, expected, atol=1e-6, rtol=0)


def test_generator_noise_is_minus_log_exponential() -> None:
    logits = torch.tensor([[0.2, -0.1], [0.0, 0.0], [-1.0, 1.0]])
    g = torch.Generator().manual_seed(3)
    y = GumbelGate()(logits, generator=g)
    g = torch.Generator().manual_seed(3)
    noise = -torch.empty_like(logits).exponential_(generator=g).log()
    assert torch.equal(y, F.one_hot((logits + noise).argmax(-1), 2).float())


def test_same_generator_same_sample_and_tau_does_not_change_it() -> None:
    logits = torch.randn(50, 2)
    a = GumbelGate(tau=5.0)(logits, generator=torch.Generator().manual_seed(1))
    b = GumbelGate(tau=0.05)(logits, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_values_are_exactly_zero_or_one_with_gradient() -> None:
    logits = torch.randn(500, 2, requires_grad=True)
    y = GumbelGate(tau=0.7)(logits)
    assert y.requires_grad
    assert set(y.detach().unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(y.sum(-1), torch.ones(500))


def test_eval_is_argmax_and_deterministic() -> None:
    gate = GumbelGate().eval()
    logits = torch.randn(7, 3, 2)
    y1, y2 = gate(logits), gate(logits)
    assert torch.equal(y1, F.one_hot(logits.argmax(-1), 2).float())
    assert torch.equal(y1, y2)


def test_sample_at_eval_is_stochastic() -> None:
    gate = GumbelGate(sample_at_eval=True).eval()
    logits = torch.zeros(200, 2)
    assert not torch.equal(gate(logits), gate(logits))


def test_many_classes() -> None:
    logits = torch.tensor([[0.0, 1.0, 3.0, 2.0]])
    noise = torch.tensor([[5.0, 0.0, 0.0, 0.0]])
    assert GumbelGate()(logits, noise=noise).tolist() == [[1.0, 0.0, 0.0, 0.0]]
    assert GumbelGate().eval()(logits).tolist() == [[0.0, 0.0, 1.0, 0.0]]


def test_soft_mode() -> None:
    gate = GumbelGate(tau=2.0, hard=False)
    logits = torch.tensor([[1.0, 0.0]])
    y = gate(logits, noise=torch.tensor([[0.0, 2.0]]))
    p = 1 / (1 + math.exp(-0.5))
    torch.testing.assert_close(y, torch.tensor([[1 - p, p]]))
    torch.testing.assert_close(gate.eval()(logits), F.softmax(logits / 2.0, -1))


def test_temperature_is_a_buffer_and_round_trips() -> None:
    gate = GumbelGate(tau=5.0)
    assert "tau" in gate.state_dict()
    gate.tau = 2.0
    assert gate.temperature == 2.0 and isinstance(gate.tau, torch.Tensor)
    gate.set_temperature(torch.tensor(1.5))
    other = GumbelGate(tau=5.0)
    other.load_state_dict(gate.state_dict())
    assert other.temperature == 1.5
    assert "tau=1.5" in repr(other)


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_temperature(tau: float) -> None:
    with pytest.raises(ConfigError, match="tau"):
        GumbelGate(tau=tau)
    gate = GumbelGate()
    with pytest.raises(ConfigError):
        gate.tau = tau


def test_bad_logits_and_noise() -> None:
    gate = GumbelGate()
    with pytest.raises(ShapeError, match="n >= 2"):
        gate(torch.zeros(3, 1))
    with pytest.raises(ShapeError, match="float"):
        gate(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ShapeError, match="noise"):
        gate(torch.zeros(3, 2), noise=torch.zeros(2, 2))


@pytest.mark.parametrize("lead", [(), (5,), (2, 3, 4), (0,), (0, 3)])
def test_any_leading_shape(lead: tuple[int, ...]) -> None:
    gate = GumbelGate(tau=2.0)
    logits = torch.randn(*lead, 2, requires_grad=True)
    noise = gumbel_noise(logits.detach(), torch.Generator().manual_seed(0))
    y = gate(logits, noise=noise)
    assert y.shape == (*lead, 2)
    # each position on its own: the same as gating the flattened (N, 2) rows
    flat = gate(logits.reshape(-1, 2), noise=noise.reshape(-1, 2))
    assert torch.equal(y.reshape(-1, 2), flat)
    assert torch.equal(y.sum(-1), torch.ones(lead))
    if y.numel():
        y[..., 1].sum().backward()
        assert logits.grad.shape == logits.shape and logits.grad.abs().sum() > 0
    assert torch.equal(gate.eval()(logits), F.one_hot(logits.argmax(-1), 2).float())
