"""RandomPolicy and AllPolicy: keep rates, seeds, phases, shapes."""

from __future__ import annotations

import pytest
import torch
from policy_helpers import MODALITY_SETS, make_views

from adamml.errors import ConfigError, ShapeError
from adamml.policies import AllPolicy, RandomPolicy


@pytest.mark.parametrize("cls", [RandomPolicy, AllPolicy])
@pytest.mark.parametrize("modalities", MODALITY_SETS)
@pytest.mark.parametrize("b,s", [(1, 1), (1, 5), (3, 1), (3, 5)])
def test_shapes(cls, modalities, b, s) -> None:
    policy = cls(modalities)
    assert policy.modalities == modalities and not policy.needs_views
    for mode in (policy.train, policy.eval):
        mode()
        out = policy(make_views(modalities, b, s))
        assert out.decisions.shape == (b, s, len(modalities)) and out.logits is None
        assert out.decisions.dtype == torch.float32
        assert set(out.decisions.unique().tolist()) <= {0.0, 1.0}


def test_all_policy_is_all_ones_and_reads_only_the_size() -> None:
    out = AllPolicy(("rgb", "audio"))({"rgb": torch.zeros(2, 4, 1)})
    assert torch.equal(out.decisions, torch.ones(2, 4, 2))
    assert AllPolicy(("rgb",))(batch_size=3, num_segments=2).decisions.shape == (3, 2, 1)
    with pytest.raises(ShapeError, match="cannot read"):
        AllPolicy(("rgb",))({})


def test_keep_rate_matches_p() -> None:
    policy = RandomPolicy(("rgb", "audio", "flow"), p={"rgb": 0.2, "audio": 0.5, "flow": 0.9})
    d = policy(batch_size=200, num_segments=50).decisions  # 10,000 draws per modality
    rates = d.mean(dim=(0, 1))
    # binomial std <= 0.005; 0.02 is four standard deviations
    torch.testing.assert_close(rates, torch.tensor([0.2, 0.5, 0.9]), atol=0.02, rtol=0)
    assert RandomPolicy(("rgb",), p=0.0)(batch_size=5, num_segments=5).decisions.sum() == 0
    assert RandomPolicy(("rgb",), p=1.0)(batch_size=5, num_segments=5).decisions.min() == 1


def test_draws_are_independent_per_video_segment_and_modality() -> None:
    d = RandomPolicy(("rgb", "audio"), seed=0)(batch_size=100, num_segments=100).decisions
    both = (d[..., 0] * d[..., 1]).mean()
    assert abs(both.item() - 0.25) < 0.02  # independent modalities: P(both) = 0.5 * 0.5
    assert not torch.equal(d[0], d[1]) and not torch.equal(d[:, 0], d[:, 1])


def test_same_seed_same_decisions() -> None:
    a, b = RandomPolicy(("rgb", "audio"), seed=3), RandomPolicy(("rgb", "audio"), seed=3)
    first_a, first_b = a(batch_size=4, num_segments=5), b(batch_size=4, num_segments=5)
    assert torch.equal(first_a.decisions, first_b.decisions)
    # training continues the seeded stream: a new draw, the same for both
    second_a = a(batch_size=4, num_segments=5).decisions
    assert torch.equal(second_a, b(batch_size=4, num_segments=5).decisions)
    assert not torch.equal(second_a, first_a.decisions)
    other = RandomPolicy(("rgb", "audio"), seed=4)(batch_size=4, num_segments=5).decisions
    assert not torch.equal(other, first_a.decisions)


def test_eval_is_deterministic_for_a_seed() -> None:
    policy = RandomPolicy(("rgb", "audio"), seed=11).eval()
    views = make_views(("rgb", "audio"), 8, 10)
    assert torch.equal(policy(views).decisions, policy(views).decisions)


def test_generator_argument_overrides() -> None:
    policy = RandomPolicy(("rgb",))
    d1 = policy(batch_size=6, num_segments=6, generator=torch.Generator().manual_seed(5)).decisions
    d2 = policy(batch_size=6, num_segments=6, generator=torch.Generator().manual_seed(5)).decisions
    assert torch.equal(d1, d2)


@pytest.mark.parametrize(
    "when,random_in_train,random_in_eval",
    [
        ("both", True, True),
        ("train", True, False),
        ("test", False, True),
    ],
)
def test_phases(when, random_in_train, random_in_eval) -> None:
    policy = RandomPolicy(("rgb", "audio"), when=when, seed=0)
    d_train = policy.train()(batch_size=20, num_segments=10).decisions
    d_eval = policy.eval()(batch_size=20, num_segments=10).decisions
    assert bool((d_train == 0).any()) is random_in_train
    assert bool((d_eval == 0).any()) is random_in_eval
    if not random_in_train:
        assert torch.equal(d_train, torch.ones(20, 10, 2))


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="when"):
        RandomPolicy(("rgb",), when="always")
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        RandomPolicy(("rgb",), p=1.5)
    with pytest.raises(ConfigError, match=r"no value for \['audio'\]"):
        RandomPolicy(("rgb", "audio"), p={"rgb": 0.5})
