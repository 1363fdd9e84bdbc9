"""Optical flow: known-shift accuracy, quantisation round trip, on-demand computation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from adamml.data.flow import dequantise_flow, normalise_flow, optical_flow, quantise_flow
from adamml.data.flowclip import FlowRequest, OnDemandFlow, flow_pairs, flow_segments
from adamml.data.spatial import EVAL_SPATIAL, SpatialParams


def _textured_pair(dx: int, dy: int, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    big = cv2.GaussianBlur(rng.random((size + 40, size + 40)).astype(np.float32), (0, 0), 2.0)
    big = cv2.normalize(big, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    a = big[20 : 20 + size, 20 : 20 + size]
    b = big[20 - dy : 20 - dy + size, 20 - dx : 20 - dx + size]  # content moves by (+dx, +dy)
    return a, b


@pytest.mark.parametrize("method", ["tvl1", "dis", "farneback"])
def test_known_shift(method: str) -> None:
    a, b = _textured_pair(3, 2)
    flow = optical_flow(a, b, method=method)
    inner = flow[16:-16, 16:-16].reshape(-1, 2).mean(0)
    tol = 0.1 if method == "tvl1" else 0.3
    np.testing.assert_allclose(inner, [3.0, 2.0], atol=tol)


def test_clip_and_quantise_round_trip() -> None:
    f = np.random.default_rng(0).uniform(-30, 30, (16, 16, 2)).astype(np.float32)
    q = quantise_flow(f)
    assert q.dtype == np.uint8
    back = dequantise_flow(q)
    assert np.abs(back - np.clip(f, -20, 20)).max() <= 20 / 255 + 1e-5
    np.testing.assert_allclose(normalise_flow(np.array([20.0])), 20 / (40 * 0.226), rtol=1e-6)


def test_flow_segments_interleave_and_flip() -> None:
    field = np.zeros((40, 40, 2), np.float32)
    field[..., 0], field[..., 1] = 4.0, -2.0
    pairs = np.zeros((1, 2, 5), np.int64)
    out = flow_segments(lambda k: field, pairs, (32, 32), EVAL_SPATIAL)
    assert out.shape == (1, 2, 10, 32, 32)
    assert torch.allclose(out[0, 0, 0::2], torch.tensor(4 / 9.04))
    assert torch.allclose(out[0, 0, 1::2], torch.tensor(-2 / 9.04))
    flipped = flow_segments(lambda k: field, pairs, (32, 32), SpatialParams(flip=True))
    assert torch.allclose(flipped[:, :, 0::2], -out[:, :, 0::2])


def test_on_demand_computes_only_selected_segments() -> None:
    frames = np.random.default_rng(0).integers(0, 255, (200, 48, 64, 3), dtype=np.uint8)
    calls: list[int] = []

    def get(idx):  # noqa: ANN001, ANN202
        calls.extend(idx)
        return frames[np.asarray(idx)]

    from adamml.data.sampling import sample_segments

    idx = sample_segments(200, 10, 4, train=False, consecutive=5)
    req = FlowRequest(get, 200, idx, 5, (32, 32), EVAL_SPATIAL, method="dis", flow_size=48)
    src = OnDemandFlow([req, req])
    assert src.shape == (2, 10, 4, 10, 32, 32)
    out = src.gather(torch.tensor([0, 0, 0]), torch.tensor([1, 4, 8]))
    assert out.shape == (3, 4, 10, 32, 32)
    expected = len(np.unique(flow_pairs(idx[[1, 4, 8]], 5, 200)))
    assert src.pairs_computed == expected
    src.gather([0], [4])  # cached
    assert src.pairs_computed == expected
    full = len(np.unique(flow_pairs(idx, 5, 200)))
    assert expected < full and max(calls) < 200
