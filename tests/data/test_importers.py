"""``adamml data import``: each paper dataset's annotation format -> a manifest that
``adamml data check`` accepts, ``classes.txt``, and the videos missing on disk."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from adamml.cli import main
from adamml.data import builtin_classes, expected_num_classes, read_classes
from adamml.data.errors import ManifestError
from adamml.data.importers import IMPORTERS, import_dataset

TINY = {"size": (32, 24), "num_frames": 6, "audio": False}


@pytest.fixture
def videos(tmp_path: Path, make_mp4: Callable[..., Path]) -> Callable[..., Path]:
    """``videos("a.mp4", "sub/b.mkv")`` writes tiny videos below ``tmp_path/videos``."""

    def write(*names: str) -> Path:
        for name in names:
            (tmp_path / "videos" / name).parent.mkdir(parents=True, exist_ok=True)
            make_mp4(f"videos/{name}", **TINY)
        return tmp_path / "videos"

    return write


def _import(*argv: str) -> int:
    return main(["data", "import", *argv, "--no-progress"])


def _rows(manifest: Path) -> list[tuple[str, str]]:
    with manifest.open(newline="") as f:
        return [(r["path"], r["label"]) for r in csv.DictReader(f)]


def _checks(manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["data", "check", str(manifest)]) == 0, capsys.readouterr()


def test_shipped_class_lists_have_the_paper_counts() -> None:
    for name, count in [
        ("kinetics_sounds", 31),
        ("activitynet", 200),
        ("fcvid", 239),
        ("mini_sports1m", 487),
    ]:
        names = builtin_classes(name)
        assert len(names) == len(set(names)) == count == expected_num_classes(name)
    sports = builtin_classes("mini_sports1m")
    assert (sports[0], sports[486]) == ("boomerang", "model aircraft")  # labels.txt's ends
    fcvid = builtin_classes("fcvid")
    # FCVID's 1-based ids as the source lists them, in plain byte order
    assert (fcvid[0], fcvid[22], fcvid[133], fcvid[238]) == (
        "accordionPerformance",
        "birthday",
        "marriageProposal",
        "yoyoTricks",
    )
    assert fcvid == sorted(fcvid)
    with pytest.raises(ManifestError, match="shipped: activitynet, fcvid, kinetics_sounds, mini"):
        builtin_classes("ucf101")


def _activitynet(path: Path) -> Path:
    taxonomy = [
        {"nodeId": 0, "nodeName": "Root", "parentId": None, "parentName": None},
        {"nodeId": 1, "nodeName": "Sports", "parentId": 0, "parentName": "Root"},
        {"nodeId": 2, "nodeName": "Archery", "parentId": 1, "parentName": "Sports"},
        {"nodeId": 3, "nodeName": "Playing bagpipes", "parentId": 0, "parentName": "Root"},
    ]

    def video(subset: str, *labels: str) -> dict[str, object]:
        anns = [{"label": lab, "segment": [0.0, 1.0]} for lab in labels]
        return {"subset": subset, "duration": 1.0, "url": "", "annotations": anns}

    database = {
        "aaaaaaaaaaa": video("training", "Archery", "Archery"),  # two segments, one label
        "bbbbbbbbbbb": video("training", "Playing bagpipes"),
        "ccccccccccc": video("training", "Archery"),  # not downloaded
        "ddddddddddd": video("validation", "Archery"),
        "eeeeeeeeeee": video("testing"),  # unlabelled
    }
    path.write_text(
        json.dumps({"version": "VERSION 1.3", "taxonomy": taxonomy, "database": database})
    )
    return path


def test_activitynet(tmp_path: Path, videos, capsys) -> None:  # noqa: ANN001
    ann = _activitynet(tmp_path / "activity_net.v1-3.min.json")
    vdir = videos("v_aaaaaaaaaaa.mp4", "more/bbbbbbbbbbb.mkv", "ddddddddddd.mp4")
    out = tmp_path / "data" / "train.csv"
    assert _import("activitynet", str(ann), str(vdir), str(out), "--split", "training") == 0
    printed = capsys.readouterr().out
    assert "2 videos, 200 classes (built-in list activitynet)" in printed
    assert "missing on disk: 1" in printed
    assert _rows(out) == [
        ("../videos/v_aaaaaaaaaaa.mp4", "Archery"),
        ("../videos/more/bbbbbbbbbbb.mkv", "Playing bagpipes"),
    ]
    assert (tmp_path / "data" / "train.missing.txt").read_text() == "ccccccccccc\n"
    assert read_classes(tmp_path / "data" / "classes.txt") == builtin_classes("activitynet")
    _checks(out, capsys)
    # no --split: every labelled video, whatever its subset; nothing missing -> no list left
    (tmp_path / "videos" / "ccccccccccc.mp4").write_bytes((vdir / "ddddddddddd.mp4").read_bytes())
    assert _import("activitynet", str(ann), str(vdir), str(out)) == 0
    assert len(_rows(out)) == 4 and not (tmp_path / "data" / "train.missing.txt").exists()


def test_activitynet_labels_outside_the_list_derive_it_from_the_taxonomy(
    tmp_path: Path,
    videos,
    capsys,  # noqa: ANN001
) -> None:
    ann = tmp_path / "a.json"
    ann.write_text(
        json.dumps(
            {
                "taxonomy": [
                    {"nodeId": 1, "nodeName": "Zorbing", "parentId": 0},
                    {"nodeId": 2, "nodeName": "Archery", "parentId": 0},
                ],
                "database": {
                    "aaaaaaaaaaa": {"subset": "training", "annotations": [{"label": "Zorbing"}]}
                },
            }
        )
    )
    out = tmp_path / "m.csv"
    assert _import("activitynet", str(ann), str(videos("aaaaaaaaaaa.mp4")), str(out)) == 0
    assert "derived from the annotation file's taxonomy" in capsys.readouterr().out
    assert read_classes(tmp_path / "classes.txt") == ["Zorbing", "Archery"]
    _checks(out, capsys)


def _fcvid(materials: Path, rows: list[tuple[str, str, list[int]]], k: int = 239) -> Path:
    materials.mkdir(parents=True, exist_ok=True)
    (materials / "FCVID_VideoName_TrainTestSplit.txt").write_text(
        "".join(f"{video} {split}\n" for video, split, _ in rows)
    )
    (materials / "FCVID_Label.txt").write_text(
        "".join(" ".join("1" if i in on else "0" for i in range(k)) + "\n" for *_, on in rows)
    )
    return materials


def test_fcvid_multi_label_built_in_names_and_folder_check(
    tmp_path: Path,
    videos,  # noqa: ANN001
    capsys,  # noqa: ANN001
    monkeypatch,  # noqa: ANN001
) -> None:
    materials = _fcvid(
        tmp_path / "materials",
        [
            ("birthday/x1.mp4", "train", [22, 17]),  # 22: birthday, 17: bee
            ("panda/x2.mp4", "train", [141]),  # 141: panda
            ("panda/x3.mp4", "test", [141]),
            ("beach/x4.mp4", "train", [15]),
        ],
    )
    vdir = videos("birthday/x1.mp4", "elsewhere/x2.mp4", "panda/x3.mp4")
    out = tmp_path / "fcvid" / "train.csv"
    assert _import("fcvid", str(materials), str(vdir), str(out), "--split", "train") == 0
    printed = capsys.readouterr().out
    assert "built-in list fcvid" in printed and "warning" not in printed
    assert _rows(out) == [
        ("../videos/birthday/x1.mp4", "bee;birthday"),  # multi-label, in column order
        ("../videos/elsewhere/x2.mp4", "panda"),  # found by its file name
    ]
    assert (tmp_path / "fcvid" / "train.missing.txt").read_text() == "beach/x4.mp4\n"
    assert len(read_classes(tmp_path / "fcvid" / "classes.txt")) == 239
    _checks(out, capsys)
    # columns in another order than the list: the folders say so
    shifted = _fcvid(tmp_path / "shifted", [("birthday/x1.mp4", "train", [23])])
    assert _import("fcvid", str(shifted), str(vdir), str(out)) == 0
    assert "warning: 1 videos lie in a folder named after a class" in capsys.readouterr().out
    names = tmp_path / "fcvid_names.txt"
    names.write_text("".join(f"category {i}\n" for i in range(239)))
    assert (
        _import(
            "fcvid",
            str(materials / "FCVID_VideoName_TrainTestSplit.txt"),
            str(vdir),
            str(out),
            "--split",
            "train",
            "--classes",
            str(names),
            "--single-label",
        )
        == 0
    )
    assert _rows(out)[0] == ("../videos/birthday/x1.mp4", "category 17")  # the first
    _checks(out, capsys)
    names.write_text("a\nb\n")
    assert _import("fcvid", str(materials), str(vdir), str(out), "--classes", str(names)) == 2
    assert "has 2 names" in capsys.readouterr().err
    # index labels with no list at all get placeholders, and the summary says so
    import dataclasses

    from adamml.data import importers

    bare = dataclasses.replace(importers.IMPORTERS["fcvid"], builtin=None)
    monkeypatch.setitem(importers.IMPORTERS, "fcvid", bare)
    assert _import("fcvid", str(materials), str(vdir), str(out), "--split", "train") == 0
    assert "placeholder names" in capsys.readouterr().out
    assert _rows(out)[1] == ("../videos/elsewhere/x2.mp4", "class_141")


def test_mini_sports1m(tmp_path: Path, videos, capsys) -> None:  # noqa: ANN001
    part = tmp_path / "train_partition.txt"
    labels = {"AAAAAAAAAAA": "3,7", "BBBBBBBBBBB": "486", "CCCCCCCCCCC": "486", "DDDDDDDDDDD": "0"}
    part.write_text(
        "".join(f"https://www.youtube.com/watch?v={v} {ls}\n" for v, ls in labels.items())
    )
    vdir = videos("AAAAAAAAAAA.mp4", "BBBBBBBBBBB.avi", "CCCCCCCCCCC.mp4")
    out = tmp_path / "ms1m" / "train.csv"
    assert _import("mini-sports1m", str(part), str(vdir), str(out)) == 0
    assert "3 videos, 487 classes (built-in list mini_sports1m)" in capsys.readouterr().out
    assert [label for _, label in _rows(out)] == [
        "candlepin bowling;cycling",
        "model aircraft",
        "model aircraft",
    ]
    assert (tmp_path / "ms1m" / "train.missing.txt").read_text() == "DDDDDDDDDDD\n"
    assert read_classes(tmp_path / "ms1m" / "classes.txt") == builtin_classes("mini_sports1m")
    _checks(out, capsys)
    # the appendix's subset: N per class (by first label), videos of a duration range
    subset = "--per-class 1 --duration 0:60 --single-label".split()
    assert _import("mini-sports1m", str(part), str(vdir), str(out), *subset) == 0
    assert sorted(label for _, label in _rows(out)) == ["candlepin bowling", "model aircraft"]
    assert _import("mini-sports1m", str(part), str(vdir), str(out), "--duration", "120:300") == 1
    assert "the manifest is empty" in capsys.readouterr().err


def test_kinetics_sounds_keeps_its_31_classes(tmp_path: Path, videos, capsys) -> None:  # noqa: ANN001
    csv_file = tmp_path / "kinetics_train.csv"
    csv_file.write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "playing drums,AAAAAAAAAAA,10,20,train\n"
        "abseiling,BBBBBBBBBBB,0,10,train\n"  # not a Kinetics-Sounds class
        "bowling,CCCCCCCCCCC,5,15,train\n"
        "bowling,DDDDDDDDDDD,5,15,train\n"
        "bowling,EEEEEEEEEEE,7,17,val\n"
    )
    vdir = videos(
        "playing drums/AAAAAAAAAAA_000010_000020.mp4",
        "BBBBBBBBBBB_000000_000010.mp4",
        "CCCCCCCCCCC.mp4",
        "EEEEEEEEEEE_000007_000017.mp4",
    )
    out = tmp_path / "ks" / "train.csv"
    assert _import("kinetics-sounds", str(csv_file), str(vdir), str(out), "--split", "train") == 0
    assert _rows(out) == [
        ("../videos/playing drums/AAAAAAAAAAA_000010_000020.mp4", "playing drums"),
        ("../videos/CCCCCCCCCCC.mp4", "bowling"),
    ]
    assert (tmp_path / "ks" / "train.missing.txt").read_text() == "DDDDDDDDDDD_000005_000015\n"
    assert read_classes(tmp_path / "ks" / "classes.txt") == builtin_classes("kinetics_sounds")
    _checks(out, capsys)


@pytest.mark.parametrize(
    "dataset, content, match",
    [
        ("activitynet", "{not json", "not valid JSON"),
        ("activitynet", '{"taxonomy": []}', "no 'database' object"),
        (
            "activitynet",
            '{"database": {"x": {"annotations": [{"segment": [0, 1]}]}}}',
            "annotation without a 'label'",
        ),
        ("mini-sports1m", "https://www.youtube.com/watch?v=AAAAAAAAAAA\n", "line 1: expected 'URL"),
        ("mini-sports1m", "https://www.youtube.com/watch?v=AAAAAAAAAAA x,y\n", "line 1"),
        ("kinetics-sounds", "youtube_id,label\nA,bowling\n", "lacks label, youtube_id"),
        ("kinetics-sounds", "label,youtube_id,time_start,time_end\nbowling,A,x,1\n", "line 2"),
        ("fcvid", "a.mp4 train\nb.mp4\n", "rows but"),
    ],
)
def test_malformed_annotations_name_the_file_and_the_format(
    tmp_path: Path,
    dataset: str,
    content: str,
    match: str,
    capsys,  # noqa: ANN001
) -> None:
    ann = tmp_path / "FCVID_VideoName_TrainTestSplit.txt"
    ann.write_text(content)
    if dataset == "fcvid":
        (tmp_path / "FCVID_Label.txt").write_text("0 1\n")
    (tmp_path / "videos").mkdir()
    assert _import(dataset, str(ann), str(tmp_path / "videos"), str(tmp_path / "m.csv")) == 2
    err = capsys.readouterr().err
    assert match in err and str(tmp_path) in err
    assert (
        f"adamml data import {dataset} expects" in err and "\n" == err[-1] and err.count("\n") == 1
    )


def test_bad_options(tmp_path: Path) -> None:
    ann = _activitynet(tmp_path / "a.json")
    with pytest.raises(ManifestError, match="--split 'train' does not apply to activitynet"):
        import_dataset("activitynet", ann, tmp_path, tmp_path / "m.csv", split="train")
    with pytest.raises(ManifestError, match="unknown dataset 'ucf101'"):
        import_dataset("ucf101", ann, tmp_path, tmp_path / "m.csv")
    with pytest.raises(ManifestError, match="--per-class must be at least 1"):
        import_dataset("activitynet", ann, tmp_path, tmp_path / "m.csv", per_class=0)
    with pytest.raises(ManifestError, match="0 <= MIN <= MAX"):
        import_dataset("activitynet", ann, tmp_path, tmp_path / "m.csv", duration=(300, 120))
    with pytest.raises(ManifestError, match="video folder not found"):
        import_dataset("activitynet", ann, tmp_path / "nowhere", tmp_path / "m.csv")
    assert set(IMPORTERS) == {"activitynet", "fcvid", "mini-sports1m", "kinetics-sounds"}
