"""Readers of the paper datasets' official annotation files (used by ``adamml data import``).

Each reader turns one file into [`Annotations`][adamml.data.annotations.Annotations]: the
labelled videos, with the file names each may have on disk. Formats (AdaMML appendix A):

- ActivityNet v1.3, ``activity_net.v1-3.min.json``: a video is ``database[ID]`` with its
  ``subset`` and ``annotations[].label``; its file is ``v_ID.mp4`` (the ActivityNet crawler's
  name) or ``ID.mp4``.
- FCVID, ``FCVID_VideoName_TrainTestSplit.txt`` and ``FCVID_Label.txt``: a video is a line
  ``VIDEO train|test`` and the same line of the label file (239 values, 0 or 1).
- Sports-1M (Mini-Sports1M), ``train_partition.txt`` or ``test_partition.txt``: a video is a line
  ``URL label,label,...`` (0-based indices into ``labels.txt``); its file is ``ID.mp4``.
- Kinetics (Kinetics-Sounds), the Kinetics CSVs: a clip is a row
  ``label,youtube_id,time_start,time_end[,split]``; its file is ``ID_%06d_%06d.mp4`` (start and
  end seconds, the Kinetics crawler's name) or ``ID.mp4``.

FCVID's files are given on request by its authors; their layout here is the one public loaders
read (a split file and a row-aligned 0/1 label matrix in the release's ``materials`` folder), not
confirmed against the release itself.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from .errors import ManifestError

__all__ = [
    "AnnotatedVideo",
    "Annotations",
    "Reader",
    "read_activitynet",
    "read_fcvid",
    "read_sports1m",
    "read_kinetics",
    "FCVID_SPLIT_FILE",
    "FCVID_LABEL_FILE",
]

FCVID_SPLIT_FILE = "FCVID_VideoName_TrainTestSplit.txt"
"""FCVID's list of videos and their split (``VIDEO train|test`` per line)."""
FCVID_LABEL_FILE = "FCVID_Label.txt"
"""FCVID's labels: one row of 0/1 values (one per class) per line of the split file."""


@dataclass(frozen=True)
class AnnotatedVideo:
    """One video of an annotation file.

    Attributes:
        video_id: its id in the annotation file (a YouTube id, a Kinetics clip, FCVID's path).
        labels: class names, or class indices for formats that label by index (FCVID,
            Sports-1M); several labels make the manifest multi-label.
        names: file names it may have in the video folder, tried in order: a file stem
            (``abc`` matches ``abc.mp4``, ``abc.mkv``, ... anywhere below the folder) or a path
            relative to the folder.
    """

    video_id: str
    labels: tuple[str | int, ...]
    names: tuple[str, ...]


@dataclass(frozen=True)
class Annotations:
    """What a reader found: the labelled videos, and the full class list if the file has one
    (ActivityNet's taxonomy leaves) or the number of classes if it labels by index (FCVID)."""

    videos: list[AnnotatedVideo]
    classes: list[str] | None = None
    num_classes: int | None = None


Reader = Callable[[Path, "str | None"], Annotations]
"""``reader(annotation_path, split) -> Annotations`` (``split``: keep one split, or ``None``)."""


def _bad(path: Path, what: str) -> ManifestError:
    return ManifestError(f"{path}: {what}")


def _lines(path: Path) -> list[tuple[int, str]]:
    if not path.is_file():
        raise _bad(path, "annotation file not found")
    text = path.read_text(encoding="utf-8")
    return [(n, ln.strip()) for n, ln in enumerate(text.splitlines(), start=1) if ln.strip()]


def read_activitynet(path: Path, split: str | None) -> Annotations:
    """ActivityNet's JSON; ``split`` is a ``subset`` (``training``, ``validation``). Videos
    without annotations (the ``testing`` subset) are left out; a video's labels are its
    annotations' distinct labels.

    Raises:
        ManifestError: not JSON, no ``database`` object, an entry without an annotation list
            or an annotation without a ``label``.
    """
    if not path.is_file():
        raise _bad(path, "annotation file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _bad(path, f"not valid JSON ({e})") from e
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise _bad(path, "no 'database' object")
    videos = []
    for vid, entry in database.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("annotations", []), list):
            raise _bad(path, f"database[{vid!r}] is not an object with an 'annotations' list")
        if split is not None and entry.get("subset") != split:
            continue
        try:
            labels = tuple(dict.fromkeys(str(a["label"]) for a in entry.get("annotations", [])))
        except (KeyError, TypeError) as e:
            raise _bad(path, f"database[{vid!r}] has an annotation without a 'label'") from e
        if labels:
            videos.append(AnnotatedVideo(vid, labels, (vid, f"v_{vid}")))
    taxonomy = [n for n in data.get("taxonomy") or [] if isinstance(n, dict)]
    parents = {n.get("parentId") for n in taxonomy}
    leaves = [
        str(n["nodeName"]) for n in taxonomy if "nodeName" in n and n.get("nodeId") not in parents
    ]
    return Annotations(videos, classes=leaves or None)


def read_fcvid(path: Path, split: str | None) -> Annotations:
    """FCVID: ``path`` is the release's ``materials`` folder or its split file, with the label
    file beside it; ``split`` is ``train`` or ``test``. A video's labels are the indices of its
    row's non-zero values.

    Raises:
        ManifestError: a missing file, files of different lengths, a malformed line.
    """
    split_file = path / FCVID_SPLIT_FILE if path.is_dir() else path
    label_file = split_file.parent / FCVID_LABEL_FILE
    rows, label_rows = _lines(split_file), _lines(label_file)
    if len(rows) != len(label_rows):
        raise _bad(
            label_file,
            f"{len(label_rows)} rows but {split_file.name} has {len(rows)} (aligned row by row)",
        )
    videos, width = [], None
    for (n, row), (m, values) in zip(rows, label_rows):
        parts = row.split()
        if len(parts) != 2:
            raise _bad(split_file, f"line {n}: expected 'VIDEO train|test', got {row!r}")
        try:
            flags = [float(v) for v in values.replace(",", " ").split()]
        except ValueError as e:
            raise _bad(label_file, f"line {m}: not a row of 0/1 numbers") from e
        width = len(flags) if width is None else width
        if len(flags) != width:
            raise _bad(label_file, f"line {m}: {len(flags)} values, the first row has {width}")
        if split is not None and parts[1] != split:
            continue
        labels = tuple(i for i, f in enumerate(flags) if f > 0)
        if labels:
            rel = parts[0].replace("\\", "/")
            videos.append(AnnotatedVideo(rel, labels, (rel, Path(rel).stem)))
    return Annotations(videos, num_classes=width)


def _youtube_id(url: str) -> str:
    parsed = urlparse(url)
    return parse_qs(parsed.query).get("v", [""])[0] or parsed.path.rstrip("/").rsplit("/", 1)[-1]


def read_sports1m(path: Path, split: str | None) -> Annotations:
    """A Sports-1M partition file (``URL label,label,...``; the file is one split, ``split``
    is unused). The video id is the URL's ``v=`` parameter.

    Raises:
        ManifestError: a line that is not ``URL`` and comma-separated integers.
    """
    videos = []
    for n, line in _lines(path):
        parts = line.split()
        try:
            labels = tuple(int(x) for x in parts[1].split(",") if x) if len(parts) == 2 else ()
        except ValueError:
            labels = ()
        vid = _youtube_id(parts[0])
        if not labels or not vid or min(labels) < 0:
            raise _bad(path, f"line {n}: expected 'URL label,label,...', got {line!r}")
        videos.append(AnnotatedVideo(vid, labels, (vid, f"v_{vid}")))
    return Annotations(videos)


_KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end")


def read_kinetics(path: Path, split: str | None) -> Annotations:
    """A Kinetics CSV; ``split`` keeps rows whose ``split`` column has that value. Each row is
    a 10-second clip, found as ``ID_START_END`` (``%06d`` seconds) or ``ID``.

    Raises:
        ManifestError: a header without ``label,youtube_id,time_start,time_end``, or times
            that are not numbers.
    """
    if not path.is_file():
        raise _bad(path, "annotation file not found")
    videos = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not set(_KINETICS_COLUMNS) <= set(reader.fieldnames):
            raise _bad(path, f"header {reader.fieldnames} lacks {', '.join(_KINETICS_COLUMNS)}")
        for n, row in enumerate(reader, start=2):
            if split is not None and row.get("split") != split:
                continue
            vid = (row["youtube_id"] or "").strip()
            try:
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            except (TypeError, ValueError) as e:
                raise _bad(path, f"line {n}: time_start/time_end are not numbers") from e
            clip = f"{vid}_{start:06d}_{end:06d}"
            videos.append(AnnotatedVideo(clip, ((row["label"] or "").strip(),), (clip, vid)))
    return Annotations(videos)
