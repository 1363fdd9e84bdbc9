"""VideoDataset and the DataLoader, straight from mp4 files; manifests and reference lists."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from adamml.data import (
    ManifestError,
    NoAudioStreamError,
    OnDemandFlow,
    VideoDataset,
    builtin_classes,
    check_manifest,
    collate_clips,
    expected_num_classes,
    import_reference_list,
    read_manifest,
)
from adamml.modalities import InputSpec

TINY = {"rgb": InputSpec((4, 3, 32, 32), "rgb"), "audio": InputSpec((1, 1, 32, 32), "audio")}


def _manifest(root: Path, rows: list[tuple[str, str]], classes: list[str]) -> Path:
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    path = root / "train.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        w.writerows(rows)
    return path


@pytest.fixture
def videos(make_mp4, tmp_path: Path) -> Path:
    (tmp_path / "v").mkdir()
    for i in range(4):
        make_mp4(f"v/{i}.mp4", num_frames=40 + 10 * i, gop=12, tone=300 + 100 * i)
    make_mp4("v/silent.mp4", num_frames=30, audio=False)
    make_mp4("v/one.mp4", num_frames=1)
    make_mp4("v/odd.mp4", size=(171, 97), pix_fmt="yuv444p", audio_channels=6, audio_rate=48000)
    return tmp_path


def test_dataloader_with_workers_tiny_spec(videos: Path) -> None:
    names = ["0", "1", "2", "3", "silent", "one", "odd"]
    m = _manifest(
        videos, [(f"v/{n}.mp4", "a" if i % 2 else "b") for i, n in enumerate(names)], ["a", "b"]
    )
    ds = VideoDataset(m, TINY, segments=3, train=True, seed=1)
    loader = DataLoader(ds, batch_size=4, num_workers=2)
    batches = list(loader)
    inputs, labels = batches[0]
    assert inputs["rgb"].shape == (4, 3, 4, 3, 32, 32)
    assert inputs["audio"].shape == (4, 3, 1, 1, 32, 32)
    assert labels.dtype == torch.long and sum(len(b[1]) for b in batches) == 7
    # reproducible with workers: same (seed, epoch, index) -> same clip
    again = next(iter(DataLoader(ds, batch_size=4, num_workers=0)))
    torch.testing.assert_close(again[0]["rgb"], inputs["rgb"])
    ds.set_epoch(1)
    assert not torch.equal(ds[0][0]["rgb"], inputs["rgb"][0])
    assert not ds[4][0]["audio"].any()  # no audio track -> zeros


def test_skip_bad_files_with_workers(videos: Path) -> None:
    (videos / "v" / "empty.mp4").touch()
    (videos / "v" / "text.mp4").write_text("not a video")
    rows = [
        ("v/0.mp4", "a"),
        ("v/empty.mp4", "a"),
        ("v/1.mp4", "b"),
        ("v/text.mp4", "b"),
        ("v/missing.mp4", "a"),
        ("v/2.mp4", "b"),
    ]
    ds = VideoDataset(_manifest(videos, rows, ["a", "b"]), TINY, segments=2, on_error="skip")
    n = sum(len(lbl) for _, lbl in DataLoader(ds, batch_size=2, num_workers=2))
    assert n == 6
    bad = ds.bad_files()
    assert {Path(p).name for p in bad} == {"empty.mp4", "text.mp4", "missing.mp4"}
    assert "MediaFileError" in bad[str(videos / "v" / "empty.mp4")]
    with pytest.warns(RuntimeWarning, match="3 bad file"):
        ds.report_errors(clear=True)
    assert ds.bad_files() == {}
    strict = VideoDataset(_manifest(videos, rows, ["a", "b"]), TINY, segments=2)
    with pytest.raises(Exception, match="empty"):
        strict[1]


def test_missing_audio_raise_and_multilabel(videos: Path) -> None:
    m = _manifest(videos, [("v/silent.mp4", "a;b"), ("v/0.mp4", "c")], ["a", "b", "c"])
    ds = VideoDataset(m, TINY, segments=2, train=False, missing_audio="raise")
    with pytest.raises(NoAudioStreamError, match="silent.mp4"):
        ds[0]
    inputs, target = ds[1]
    assert target.tolist() == [0.0, 0.0, 1.0] and inputs["rgb"].shape == (2, 4, 3, 32, 32)


def test_stored_and_on_demand_flow(videos: Path) -> None:
    from adamml.data import extract_flow

    spec = {"flow": InputSpec((2, 10, 32, 32), "flow", 5)}
    m = _manifest(videos, [("v/0.mp4", "a"), ("v/one.mp4", "a")], ["a"])
    res = extract_flow(
        [videos / "v/0.mp4", videos / "v/one.mp4"],
        videos / "flow",
        root=videos,
        method="dis",
        flow_size=48,
        progress=False,
    )
    assert len(res.written) == 2 and not res.failed
    again = extract_flow([videos / "v/0.mp4"], videos / "flow", root=videos, progress=False)
    assert len(again.skipped) == 1  # resumable
    kw = dict(segments=2, train=False, flow_method="dis", flow_size=48)
    stored = VideoDataset(m, spec, flow_dir=videos / "flow", **kw)[0][0]["flow"]
    computed = VideoDataset(m, spec, **kw)[0][0]["flow"]
    assert stored.shape == computed.shape == (2, 2, 10, 32, 32)
    assert (stored - computed).abs().max() < 20 / 255 / 9.04 + 1e-4  # quantisation step
    lazy = VideoDataset(m, spec, flow_on_demand=True, **kw)
    inputs, _ = collate_clips([lazy[0], lazy[1]])
    src = inputs["flow"]
    assert isinstance(src, OnDemandFlow) and src.shape == (2, 2, 2, 10, 32, 32)
    torch.testing.assert_close(src.gather([0, 0], [0, 1]), computed)


def test_on_demand_flow_reads_the_frames_kept_from_the_clips_decode(videos: Path) -> None:
    from adamml.data import PrefetchedFrames

    spec = {**TINY, "flow": InputSpec((2, 10, 32, 32), "flow", 5)}
    m = _manifest(videos, [("v/0.mp4", "a"), ("v/one.mp4", "a")], ["a"])
    kw = dict(segments=2, train=False, flow_method="dis", flow_size=48)
    eager = VideoDataset(m, spec, **kw)[0][0]
    lazy = VideoDataset(m, spec, flow_on_demand=True, **kw)
    inputs, _ = collate_clips([lazy[0], lazy[1]])
    src = inputs["flow"]
    getter = src.requests[0].get_frames
    assert isinstance(getter, PrefetchedFrames) and getter.decodes == 1  # the clip's decode
    torch.testing.assert_close(src.gather([0, 0], [0, 1]), eager["flow"], rtol=0, atol=0)
    torch.testing.assert_close(inputs["rgb"][0], eager["rgb"], rtol=0, atol=0)
    assert getter.decodes == 1  # flow read the kept frames
    # in a DataLoader worker nothing is kept: the frames would be pickled to this process
    loader = DataLoader(lazy, batch_size=2, num_workers=1, collate_fn=collate_clips)
    batch, _ = next(iter(loader))
    assert not isinstance(batch["flow"].requests[0].get_frames, PrefetchedFrames)
    torch.testing.assert_close(batch["flow"].gather([0], [1]), src.gather([0], [1]))


def test_manifest_errors_and_check(videos: Path) -> None:
    bad = _manifest(videos, [("v/0.mp4", "zebra")], ["a"])
    with pytest.raises(ManifestError, match="unknown class 'zebra'"):
        read_manifest(bad)
    (videos / "v" / "empty.mp4").touch()
    m = _manifest(
        videos,
        [("v/0.mp4", "a"), ("v/silent.mp4", "a"), ("v/empty.mp4", "b"), ("v/gone.mp4", "b")],
        ["a", "b", "c"],
    )
    report = check_manifest(m)
    assert not report.ok and len(report.missing) == 1 and len(report.unreadable) == 1
    assert report.no_audio == [str(videos / "v/silent.mp4")]
    assert report.class_counts == {"a": 2, "b": 2, "c": 0} and report.total_duration > 2.0


def test_reference_list_import(tmp_path: Path) -> None:
    import cv2

    for name in ("x", "y"):
        (tmp_path / "frames" / name).mkdir(parents=True)
        for i in range(1, 13):
            cv2.imwrite(
                str(tmp_path / "frames" / name / f"{i:05d}.jpg"),
                np.full((40, 50, 3), i * 10, np.uint8),
            )
    (tmp_path / "train.txt").write_text("frames/x;1;12;0\nframes/y;1;12;2\n")
    out = import_reference_list(
        tmp_path / "train.txt", tmp_path / "m" / "train.csv", classes="kinetics_sounds"
    )
    m = read_manifest(out)
    assert [e.labels for e in m.entries] == [(0,), (2,)] and len(m.classes) == 31
    inputs, label = VideoDataset(out, TINY, segments=2, train=False)[1]
    assert inputs["rgb"].shape == (2, 4, 3, 32, 32) and int(label) == 2


def test_class_lists() -> None:
    assert len(builtin_classes("kinetics_sounds")) == expected_num_classes("Kinetics-Sounds") == 31
    assert [expected_num_classes(n) for n in ("activitynet", "fcvid", "mini_sports1m")] == [
        200,
        239,
        487,
    ]
