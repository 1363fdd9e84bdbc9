"""SyntheticAV: determinism, ground truth, shapes, and the written mp4s against the tensors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from adamml.data.synthetic import CATEGORY_NAMES, SyntheticAV, class_table, write_synthetic_av
from adamml.errors import ConfigError
from adamml.modalities import InputSpec

TINY = {
    "rgb": InputSpec((4, 3, 32, 32), "rgb"),
    "audio": InputSpec((1, 1, 32, 32), "audio"),
    "rgbdiff": InputSpec((4, 15, 32, 32), "rgbdiff", 5),
}


def test_same_seed_same_video_and_different_seeds_differ() -> None:
    a, b = SyntheticAV(3, seed=1).video(2), SyntheticAV(3, seed=1).video(2)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
    assert a.label == b.label and np.array_equal(a.categories, b.categories)
    c = SyntheticAV(3, seed=2).video(2)
    assert not np.array_equal(a.frames, c.frames) and not np.allclose(a.audio, c.audio)
    v = SyntheticAV(3, seed=1, split="val").video(2)
    assert not np.array_equal(a.frames, v.frames)


def test_frames_render_the_same_alone_or_whole() -> None:
    ds = SyntheticAV(2, seed=0)
    whole = ds.video(1).frames
    assert np.array_equal(ds.frames(1, [37, 5, 159]), whole[[37, 5, 159]])


def test_video_shapes_and_ground_truth() -> None:
    ds = SyntheticAV(2, seed=0, num_classes=4)
    v = ds.video(0)
    assert v.frames.shape == (160, 64, 64, 3) and v.frames.dtype == np.uint8
    assert v.audio.shape == (307200,) and v.audio.dtype == np.float32
    assert np.abs(v.audio).max() <= 1.0 and v.fps == 12.5 and v.sample_rate == 24000
    assert v.evidence.shape == (160, 2) and v.categories.shape == (10,)
    # frame f lies in segment f // 16; its evidence is its segment's category
    rgb = np.isin(v.categories, (1, 3)).repeat(16)
    assert np.array_equal(v.evidence[:, 0], rgb)
    assert v.class_name == ds.classes[v.label]


def test_evidence_frequencies_follow_the_probabilities() -> None:
    probs = dict(p_rgb_only=0.3, p_audio_only=0.2, p_both=0.1, p_neither=0.4)
    ds = SyntheticAV(400, seed=3, **probs)
    cats = np.concatenate([ds.plan(i).categories for i in range(len(ds))])  # 4000 segments
    freq = np.bincount(cats, minlength=4) / cats.size
    expected = [probs["p_" + name] for name in CATEGORY_NAMES]
    assert np.allclose(freq, expected, atol=0.025), freq  # ~3.3 sigma
    labels = ds.labels
    assert np.bincount(labels, minlength=6).min() > 40


def test_visual_evidence_is_the_yellow_sprite() -> None:
    """Evidence segments contain saturated yellow pixels; other segments do not."""
    ds = SyntheticAV(20, seed=0)
    for i in range(len(ds)):
        v = ds.video(i)
        f = v.frames.astype(int)
        yellow = ((f[..., 0] > 200) & (f[..., 1] > 160) & (f[..., 2] < 110)).sum((1, 2))
        assert (yellow[v.evidence[:, 0]] > 20).all()
        assert (yellow[~v.evidence[:, 0]] == 0).all()


def test_class_table_has_motion_only_pairs() -> None:
    table = class_table(6, motion_pairs=1)
    assert len({c.name for c in table}) == 6
    assert table[4].shape == table[5].shape and {table[4].direction, table[5].direction} == {-1, 1}
    assert len({c.frequency for c in table}) == 6


@pytest.mark.parametrize(
    "bad",
    [
        dict(p_both=0.5),
        dict(num_classes=13),
        dict(split="dev"),
        dict(colour=1),
        dict(num_classes=1),
    ],
)
def test_bad_configuration_raises_config_error(bad: dict) -> None:
    with pytest.raises(ConfigError):
        SyntheticAV(2, **bad)


def test_tensor_shapes_for_tiny_specs_and_epoch_positions() -> None:
    ds = SyntheticAV(3, seed=0).tensors(TINY, segments=5, train=True)
    assert ds.inputs["rgb"].shape == (3, 10, 4, 3, 32, 32)
    x, y = ds[1]
    assert x["rgb"].shape == (5, 4, 3, 32, 32) and x["rgb"].dtype == torch.float32
    assert x["audio"].shape == (5, 1, 1, 32, 32) and x["rgbdiff"].shape == (5, 4, 15, 32, 32)
    assert y == SyntheticAV(3, seed=0).plan(1).label
    draws = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        pos = ds.positions(1)
        assert ((pos // 2) == np.arange(5)).all()
        draws.add(tuple(pos))
    assert len(draws) > 1
    ds.set_epoch(2)
    assert torch.equal(ds[1][0]["rgb"], ds[1][0]["rgb"])  # reproducible within an epoch
    ev = SyntheticAV(3, seed=0).tensors(TINY, segments=10, train=False)
    assert ev[0][0]["rgb"].shape == (10, 4, 3, 32, 32) and ev.segment_evidence(0).shape == (10, 2)


def test_tensor_evidence_matches_plan() -> None:
    src = SyntheticAV(5, seed=4)
    ds = src.tensors({"rgb": TINY["rgb"], "audio": TINY["audio"]}, segments=10, train=False)
    for i in range(5):
        plan = src.plan(i)
        assert torch.equal(ds.evidence[i, :, 0] > 0.5, torch.from_numpy(plan.rgb_evidence))
        assert torch.equal(ds.evidence[i, :, 1] > 0.5, torch.from_numpy(plan.audio_evidence))


def test_written_mp4_agrees_with_in_memory_tensors(tmp_path) -> None:
    av = pytest.importorskip("av")
    from adamml.data import ClipTransform, VideoReader

    manifest = write_synthetic_av(tmp_path, 2, num_val=1, seed=5)
    assert manifest == tmp_path / "train.csv"
    rows = list(csv.DictReader(open(manifest)))
    classes = (tmp_path / "classes.txt").read_text().split()
    assert len(rows) == 2 and all(r["label"] in classes for r in rows)
    meta = json.loads((tmp_path / "evidence.json").read_text())
    assert len(meta["videos"]) == 3 and len(meta["videos"][0]["categories"]) == 10

    src = SyntheticAV(2, seed=5)
    mem = src.tensors(TINY, segments=10, train=False)
    ct = ClipTransform(TINY, segments=10, train=False)
    for i, row in enumerate(rows):
        path = tmp_path / row["path"]
        with av.open(str(path)) as c:  # really H.264 + AAC
            assert c.streams.video[0].codec_context.name == "h264"
            assert c.streams.audio[0].codec_context.name == "aac"
        reader = VideoReader(path)
        assert reader.num_frames == 160 and abs(reader.fps - 12.5) < 1e-6
        disk = ct(
            reader.get_frames,
            reader.num_frames,
            reader.fps,
            reader.get_audio(),
            np.random.default_rng(0),
        )
        x, label = mem[i]
        assert classes[label] == row["label"]
        # compression error only: x264 crf 18 with 4:2:0 chroma, AAC at 128 kb/s
        assert (disk["rgb"] - x["rgb"]).abs().mean() < 0.08
        assert (disk["rgbdiff"] - x["rgbdiff"]).abs().mean() < 0.05
        assert (disk["audio"] - x["audio"]).abs().mean() < 0.1
        raw = src.video(i)
        frames = reader.get_frames(range(160)).astype(np.float32)
        assert np.abs(frames - raw.frames).mean() < 4.0
        audio = reader.get_audio()[: raw.audio.size]
        assert np.corrcoef(audio, raw.audio[: audio.size])[0, 1] > 0.95


def test_training_items_are_mirrored_and_shifted_together_and_reproducibly() -> None:
    src = SyntheticAV(4, seed=0)
    plain = src.tensors(TINY, segments=5, train=True, augment=False)
    aug = src.tensors(TINY, segments=5, train=True)
    seen_flip = seen_shift = False
    for epoch in range(4):
        plain.set_epoch(epoch)
        aug.set_epoch(epoch)
        for i in range(4):
            a, p = aug[i][0], plain[i][0]
            assert torch.equal(a["rgb"], aug[i][0]["rgb"])  # same draw when asked again
            assert torch.equal(a["audio"], p["audio"])  # audio is never touched
            # undo the mirror, then find the shift that maps the plain item onto this one
            found = None
            for flip in (False, True):
                r = a["rgb"].flip(-1) if flip else a["rgb"]
                for dy in range(-4, 5):
                    for dx in range(-4, 5):
                        rows = torch.arange(32).add(dy).clamp(0, 31)
                        cols = torch.arange(32).add(dx).clamp(0, 31)
                        if torch.equal(r, p["rgb"][..., rows, :][..., cols]):
                            found = (flip, dy, dx)
            assert found is not None, f"item {i} epoch {epoch} is not a mirrored shift"
            flip, dy, dx = found
            seen_flip |= flip
            seen_shift |= (dy, dx) != (0, 0)
            # RGB difference got the very same transform
            d = a["rgbdiff"].flip(-1) if flip else a["rgbdiff"]
            rows = torch.arange(32).add(dy).clamp(0, 31)
            cols = torch.arange(32).add(dx).clamp(0, 31)
            assert torch.equal(d, p["rgbdiff"][..., rows, :][..., cols])
    assert seen_flip and seen_shift
    # flow: mirroring negates the x channels (even indices) and leaves y alone (a stand-in
    # flow tensor: featurising real TV-L1 flow here would take minutes)
    ds = src.tensors({"rgb": TINY["rgb"]}, segments=5, train=True, max_shift=0)
    flow = torch.empty(4, 10, 4, 10, 32, 32)
    flow[:, :, :, 0::2], flow[:, :, :, 1::2] = 1.0, 2.0
    from adamml.data.producers import OpticalFlow

    ds.inputs["flow"], ds.producers["flow"] = flow, OpticalFlow()
    signs = set()
    for i in range(4):
        f = ds[i][0]["flow"]
        assert (f[:, :, 1::2] == 2.0).all()
        signs.add(float(f[0, 0, 0, 0, 0]))
    assert signs <= {1.0, -1.0}
    # evaluation items are never augmented
    ev = src.tensors(TINY, segments=10, train=False)
    assert torch.equal(ev[2][0]["rgb"], ev.inputs["rgb"][2].float())


def test_the_same_video_is_written_as_the_same_file(tmp_path) -> None:
    """x264's macroblock-tree rate control made a written file depend on what the process had
    encoded before: of the same frames written again, about one in three decoded up to 25
    levels apart, so two `write_synthetic_av` calls with one seed gave different data."""
    from adamml.data.synthetic.writer import write_video

    ds = SyntheticAV(3, num_classes=6, seed=0)
    videos = [ds.video(i) for i in range(3)]
    first = [write_video(tmp_path / f"a{i}.mp4", v).read_bytes() for i, v in enumerate(videos)]
    for k in range(3):
        again = [
            write_video(tmp_path / f"b{k}{i}.mp4", v).read_bytes() for i, v in enumerate(videos)
        ]
        assert again == first
