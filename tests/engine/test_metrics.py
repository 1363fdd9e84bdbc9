"""Metrics: hand-computed top-k, AP, mAP (multi-label), selection rate weighted by segments."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from adamml.engine.metrics import (
    EvalResult,
    average_precision,
    mean_average_precision,
    selection_rate,
    summarize,
    topk_accuracy,
)
from adamml.errors import ShapeError


def test_topk_hand_computed() -> None:
    logits = torch.tensor([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5]])
    target = torch.tensor([2, 0, 0])
    acc = topk_accuracy(logits, target, (1, 2, 5))
    assert acc[1] == pytest.approx(100 / 3)
    assert acc[2] == pytest.approx(200 / 3)
    assert acc[5] == pytest.approx(100.0)  # k clipped to K


def test_topk_multilabel_counts_any_positive() -> None:
    logits = torch.tensor([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05]])
    target = torch.tensor([[1, 1, 0], [0, 1, 1]])
    assert topk_accuracy(logits, target, (1,))[1] == pytest.approx(50.0)


def test_average_precision_hand_computed() -> None:
    # ranks: pos (P=1/1), neg, pos (P=2/3) -> AP = (1 + 2/3) / 2
    ap = average_precision(torch.tensor([0.9, 0.8, 0.1]), torch.tensor([1.0, 0.0, 1.0]))
    assert ap == pytest.approx((1 + 2 / 3) / 2)
    assert math.isnan(average_precision(torch.tensor([0.3, 0.2]), torch.tensor([0.0, 0.0])))


def test_map_skips_classes_without_positives_and_is_multilabel_aware() -> None:
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.7, 0.0]])
    target = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 1, 0]])  # class 2 has no positive
    ap0 = average_precision(scores[:, 0], target[:, 0])
    ap1 = average_precision(scores[:, 1], target[:, 1])
    assert ap0 == pytest.approx(1.0) and ap1 == pytest.approx(1.0)
    assert mean_average_precision(scores, target) == pytest.approx(100.0)
    single = mean_average_precision(scores, torch.tensor([0, 1, 1]))
    assert single == pytest.approx(100 * (1.0 + 1.0) / 2)


def test_selection_rate_weights_every_segment_equally() -> None:
    # 1 video with 4 segments all on, 3 videos with 4 segments all off: 25%, not a batch mean
    d = torch.zeros(4, 4, 2)
    d[0, :, 0] = 1
    d[:, :2, 1] = 1
    rates = selection_rate(d, ("rgb", "audio"))
    assert rates == {"rgb": 25.0, "audio": 50.0}
    with pytest.raises(ShapeError):
        selection_rate(d, ("rgb",))


def test_summarize_keys_and_npz(tmp_path) -> None:
    res = EvalResult(
        index=torch.arange(3),
        logits=torch.eye(3),
        target=torch.arange(3),
        decisions=torch.ones(3, 2, 2),
        gflops=torch.tensor([1.0, 2.0, 3.0]),
        modalities=("rgb", "audio"),
    )
    m = summarize(res)
    assert set(m) == {"ce", "top1", "top5", "mAP", "selection_rate", "gflops", "num_videos"}
    assert m["top1"] == 100.0 and m["gflops"] == pytest.approx(2.0) and m["num_videos"] == 3
    res.save_decisions(str(tmp_path / "d.npz"))
    z = np.load(tmp_path / "d.npz")
    assert z["decisions"].dtype == bool and z["decisions"].shape == (3, 2, 2)
    assert list(z["modalities"]) == ["rgb", "audio"]
