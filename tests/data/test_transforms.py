"""ClipTransform: shapes of the input spec, determinism, shared augmentation, audio zeros."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adamml.data.transforms import ClipTransform
from adamml.errors import ConfigError
from adamml.modalities import InputSpec

TINY = {"rgb": InputSpec((4, 3, 32, 32), "rgb"), "audio": InputSpec((1, 1, 32, 32), "audio")}
ALL = {
    **TINY,
    "rgbdiff": InputSpec((4, 15, 32, 32), "rgbdiff", 5),
    "flow": InputSpec((4, 10, 32, 32), "flow", 5),
}


def _frames(idx):  # noqa: ANN001, ANN202
    idx = np.asarray(idx)
    yy, xx = np.mgrid[0:48, 0:64]
    img = ((xx[None] * 3 + yy[None] + idx[:, None, None] * 2) % 256).astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=-1)


@pytest.mark.parametrize("train", [True, False])
def test_shapes(train: bool) -> None:
    tf = ClipTransform(ALL, segments=3, train=train, flow_method="dis", flow_size=48)
    audio = np.random.default_rng(0).standard_normal(48000).astype(np.float32)
    out = tf(_frames, 60, 30.0, audio, np.random.default_rng(0))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "rgb": (3, 4, 3, 32, 32),
        "audio": (3, 1, 1, 32, 32),
        "rgbdiff": (3, 4, 15, 32, 32),
        "flow": (3, 4, 10, 32, 32),
    }
    assert all(torch.isfinite(v).all() for v in out.values())


def test_eval_deterministic_and_train_seeded() -> None:
    ev = ClipTransform(TINY, segments=2, train=False)
    a = ev(_frames, 90, 30.0, None, np.random.default_rng(0))
    b = ev(_frames, 90, 30.0, None, np.random.default_rng(1))
    assert torch.equal(a["rgb"], b["rgb"]) and not a["audio"].any()  # no audio -> zeros
    tr = ClipTransform(TINY, segments=2, train=True)
    c = tr(_frames, 90, 30.0, None, np.random.default_rng(5))
    d = tr(_frames, 90, 30.0, None, np.random.default_rng(5))
    assert torch.equal(c["rgb"], d["rgb"])


def test_shared_vs_independent_augmentation() -> None:
    spec = {"rgb": InputSpec((4, 3, 32, 32), "rgb"), "rgb2": InputSpec((4, 3, 32, 32), "rgb")}
    shared = ClipTransform(spec, segments=2, train=True)
    indep = ClipTransform(spec, segments=2, train=True, independent_augment=True)
    same = [
        torch.equal(*shared(_frames, 90, 30.0, None, np.random.default_rng(s)).values())
        for s in range(5)
    ]
    diff = [
        torch.equal(*indep(_frames, 90, 30.0, None, np.random.default_rng(s)).values())
        for s in range(5)
    ]
    assert all(same) and not all(diff)


def test_one_frame_video_and_unknown_modality() -> None:
    tf = ClipTransform(ALL, segments=2, train=True, flow_method="dis", flow_size=48)
    out = tf(_frames, 1, 30.0, np.zeros(10, np.float32), np.random.default_rng(0))
    assert out["flow"].abs().max() < 1e-3 and out["rgb"].shape == (2, 4, 3, 32, 32)
    with pytest.raises(ConfigError, match="no data pipeline"):
        ClipTransform({"depth": InputSpec((1, 1, 8, 8), "depth")}, segments=1, train=False)
