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


class _Recording:
    """A frame getter that resizes as it decodes (like VideoReader) and records its calls."""

    def __init__(self) -> None:
        self.shorts: list[int | None] = []

    def __call__(self, idx, short=None):  # noqa: ANN001, ANN204
        from adamml.data.spatial import resize_short

        self.shorts.append(short)
        frames = _frames(idx)
        return frames if short is None else resize_short(frames, short)


@pytest.mark.parametrize("train", [True, False])
def test_a_clip_is_decoded_once_at_the_one_short_side_its_inputs_read(train: bool) -> None:
    # in evaluation RGB and RGB difference read the frames at the shorter side 37 (32 * 256 /
    # 224, rounded), and eager flow at flow_size 37: one decode at that side, no full-size
    # frames; the inputs are those made from full-size frames
    tf = ClipTransform(ALL, segments=3, train=train, flow_method="dis", flow_size=37)
    audio = np.zeros(48000, np.float32)
    getter = _Recording()
    got = tf(getter, 60, 30.0, audio, np.random.default_rng(0))
    want = tf(_frames, 60, 30.0, audio, np.random.default_rng(0))
    assert all(torch.equal(got[k], want[k]) for k in want)
    if train:  # a drawn scale for RGB, 37 for flow: two sides, so full size
        assert getter.shorts == [None]
        tf = ClipTransform(TINY, segments=3, train=True)  # RGB alone: its drawn scale
        getter = _Recording()
        got = tf(getter, 60, 30.0, audio, np.random.default_rng(1))
        want = tf(_frames, 60, 30.0, audio, np.random.default_rng(1))
        assert torch.equal(got["rgb"], want["rgb"])
        assert len(getter.shorts) == 1 and 36 <= getter.shorts[0] <= 46  # 32 * 256..320 / 224
    else:
        assert getter.shorts == [37]
        tf = ClipTransform(ALL, segments=3, train=False, flow_method="dis", flow_size=48)
        getter = _Recording()
        tf(getter, 60, 30.0, audio, np.random.default_rng(0))
        assert getter.shorts == [None]  # RGB at 37, flow at 48


def test_a_producer_that_reads_full_size_frames_gets_them() -> None:
    from adamml.data.producers import InputProducer

    class Brightness(InputProducer):  # reads ctx.frames; short_sides stays None
        kind = "brightness"

        def frames_needed(self, spec, indices, ctx):  # noqa: ANN001, ANN202
            return indices.reshape(-1)

        def make(self, spec, indices, params, ctx):  # noqa: ANN001, ANN202
            f = ctx.frames(indices.reshape(-1))
            assert f.shape[1:] == (48, 64, 3)  # full size
            mean = torch.from_numpy(f.mean(axis=(1, 2, 3)).astype(np.float32))
            return mean.reshape(*indices.shape, 1, 1, 1).expand(*indices.shape, 1, 2, 2)

    spec = {"rgb": TINY["rgb"], "brightness": InputSpec((4, 1, 2, 2), "rgb")}
    tf = ClipTransform(spec, segments=2, train=False)
    tf.producers["brightness"] = Brightness()  # as a modality plugin's producer would be
    getter = _Recording()
    out = tf(getter, 60, 30.0, None, np.random.default_rng(0))
    assert getter.shorts == [None]
    assert out["brightness"].shape == (2, 4, 1, 2, 2)
