"""Segment sampling: regions, linspace, consecutive range, short videos."""

from __future__ import annotations

import numpy as np

from adamml.data.sampling import sample_segments, segment_centres


def test_eval_linspace_deterministic() -> None:
    idx = sample_segments(300, 10, 8, train=False)
    assert idx.shape == (10, 8)
    assert idx[0, 0] == 0 and idx[-1, 0] == 300 - 32
    np.testing.assert_array_equal(np.diff(idx, axis=1), 4)
    np.testing.assert_array_equal(idx, sample_segments(300, 10, 8, train=False))


def test_train_one_start_per_region() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        idx = sample_segments(300, 5, 8, train=True, rng=rng)
        starts = idx[:, 0]
        region = (300 - 32 + 1) / 5
        assert all(i * region - 1 <= s < (i + 1) * region for i, s in enumerate(starts))


def test_consecutive_shortens_range() -> None:
    idx = sample_segments(100, 10, 8, train=False, consecutive=5)
    assert idx.max() + 5 <= 99


def test_short_and_one_frame_videos_clamp() -> None:
    for n in (1, 2, 7, 20):
        for train in (True, False):
            idx = sample_segments(n, 5, 8, train=train, rng=np.random.default_rng(1), consecutive=5)
            assert idx.shape == (5, 8) and idx.min() >= 0 and idx.max() <= max(n - 1, 0)
    assert not sample_segments(1, 3, 8, train=False).any()


def test_centres() -> None:
    idx = sample_segments(300, 2, 8, train=False)
    np.testing.assert_allclose(segment_centres(idx), idx[:, 3:5].mean(1))
