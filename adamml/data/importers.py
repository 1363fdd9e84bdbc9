"""``adamml data import``: manifests from the paper datasets' official annotation files.

Each dataset of AdaMML's appendix A has an entry in
[`IMPORTERS`][adamml.data.importers.IMPORTERS]: how its annotation file is read and which class
list it uses.
[`import_dataset`][adamml.data.importers.import_dataset] reads the annotations, finds each video
in a folder by its id, and writes a ``path,label`` manifest (see `adamml.data.manifest`) with
``classes.txt`` beside it. Videos that are not on disk are left out of the manifest, counted and
listed in ``<manifest>.missing.txt``, so that ``adamml data check`` accepts what was written.

```
annotations --read--> [(video id, labels, file names it may have)] --VIDEO_DIR--> found | missing
found --(--duration, --per-class)--> manifest.csv + classes.txt     missing --> .missing.txt
```
"""

from __future__ import annotations

import csv
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from .annotations import (
    FCVID_LABEL_FILE,
    FCVID_SPLIT_FILE,
    AnnotatedVideo,
    Annotations,
    Reader,
    read_activitynet,
    read_fcvid,
    read_kinetics,
    read_sports1m,
)
from .errors import DataError, ManifestError
from .frames import open_media
from .manifest import builtin_classes, read_classes

__all__ = [
    "VIDEO_EXTENSIONS",
    "DatasetImporter",
    "IMPORTERS",
    "ImportResult",
    "import_dataset",
]

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv")
"""File extensions a video in ``VIDEO_DIR`` may have."""


@dataclass(frozen=True)
class DatasetImporter:
    """An entry of [`IMPORTERS`][adamml.data.importers.IMPORTERS].

    Attributes:
        read: ``read(annotations_path, split) -> Annotations``; raises `ManifestError` naming
            the file and what was wrong.
        builtin: the shipped class list it uses (`builtin_classes` name), or ``None``.
        expects: the annotation format, in one line (for ``--help`` and error messages).
        splits: accepted ``--split`` values and what they mean in the file (empty: the file
            is one split already).
        keep_listed_only: videos whose labels are not in the class list are skipped rather
            than widening the list (Kinetics-Sounds: a subset of Kinetics's classes).
    """

    read: Reader
    builtin: str | None
    expects: str
    splits: dict[str, str] = field(default_factory=dict)
    keep_listed_only: bool = False


IMPORTERS: dict[str, DatasetImporter] = {
    "activitynet": DatasetImporter(
        read_activitynet,
        "activitynet",
        'ActivityNet v1.3\'s activity_net.v1-3.min.json: {"taxonomy": [...], "database": '
        '{ID: {"subset": ..., "annotations": [{"label": ...}], ...}}}; videos v_ID.mp4 or '
        "ID.mp4",
        {"training": "subset training", "validation": "subset validation"},
    ),
    "fcvid": DatasetImporter(
        read_fcvid,
        "fcvid",
        f"FCVID's materials folder (or its {FCVID_SPLIT_FILE}): lines 'VIDEO train|test', and "
        f"beside it {FCVID_LABEL_FILE}, one row of 239 0/1 values per line of the split file "
        "(assumed from public loaders)",
        {"train": "rows marked train", "test": "rows marked test"},
    ),
    "mini-sports1m": DatasetImporter(
        read_sports1m,
        "mini_sports1m",
        "a Sports-1M partition file (train_partition.txt, test_partition.txt): lines "
        "'URL label,label,...' with 0-based indices into labels.txt; videos ID.mp4",
    ),
    "kinetics-sounds": DatasetImporter(
        read_kinetics,
        "kinetics_sounds",
        "a Kinetics CSV (header label,youtube_id,time_start,time_end[,split]), rows of other "
        "classes skipped; videos ID_START_END.mp4 (%06d times, the Kinetics crawler) or ID.mp4",
        {"train": "split column train", "val": "split column val", "test": "split column test"},
        keep_listed_only=True,
    ),
}
"""The importers by dataset name (what ``adamml data import NAME`` accepts)."""


def _bad(path: Path, what: str, name: str) -> ManifestError:
    return ManifestError(
        f"{path}: {what}; adamml data import {name} expects {IMPORTERS[name].expects}"
    )


@dataclass
class ImportResult:
    """What [`import_dataset`][adamml.data.importers.import_dataset] wrote.

    Attributes:
        manifest: the ``path,label`` CSV (only videos found on disk).
        classes_file: ``classes.txt`` beside it.
        class_source: where the class names came from (a built-in list, ``--classes``, the
            annotations, or placeholders).
        num_classes: names in ``classes.txt``.
        num_videos: rows written.
        missing: ids of annotated videos not found in the video folder.
        missing_file: ``<manifest>.missing.txt`` listing them (``None`` when none is missing).
        skipped: id -> why a found video was left out (``--duration``, ``--per-class``).
        folder_mismatches: ids of videos in a folder named after a class that is not among
            their labels (FCVID keeps its videos in one folder per category: many of these
            mean the label columns and the class list are not in the same order).
    """

    manifest: Path
    classes_file: Path
    class_source: str
    num_classes: int
    num_videos: int = 0
    missing: list[str] = field(default_factory=list)
    missing_file: Path | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    folder_mismatches: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"{self.manifest}: {self.num_videos} videos, {self.num_classes} classes "
            f"({self.class_source}), class list {self.classes_file}",
            f"  missing on disk: {len(self.missing)}"
            + (f" (listed in {self.missing_file})" if self.missing_file else ""),
        ]
        if self.skipped:
            lines.append(f"  left out: {len(self.skipped)} (--duration / --per-class)")
        if self.folder_mismatches:
            lines.append(
                f"  warning: {len(self.folder_mismatches)} videos lie in a folder named after a "
                f"class they are not labelled with (first: {self.folder_mismatches[0]}); if "
                "that is most of them, the class list is not in the order of the label "
                "columns: pass --classes FILE"
            )
        return "\n".join(lines)


def _resolve_classes(
    name: str, importer: DatasetImporter, ann: Annotations, path: Path, classes: str | None
) -> tuple[list[str], str]:
    names: list[str] | None = None
    source = ""
    if classes is not None:
        names, source = read_classes(classes), f"--classes {classes}"
    elif importer.builtin is not None:
        names, source = builtin_classes(importer.builtin), f"built-in list {importer.builtin}"
    by_index = [x for v in ann.videos for x in v.labels if isinstance(x, int)]
    if by_index:
        k = ann.num_classes or max(by_index) + 1
        if names is None:
            names = [f"class_{i:03d}" for i in range(k)]
            source = "placeholder names: the annotations name no class; pass --classes FILE"
        if max(by_index) >= len(names) or (ann.num_classes and ann.num_classes != len(names)):
            raise _bad(
                path,
                f"labels reach index {max(by_index)} of {k} classes but the class list "
                f"({source}) has {len(names)} names",
                name,
            )
        return names, source
    used = {x for v in ann.videos for x in v.labels}
    if names is not None and (used <= set(names) or importer.keep_listed_only):
        return names, source
    if classes is not None:
        unknown = sorted(used - set(names or []))
        raise _bad(path, f"label {unknown[0]!r} is not in --classes {classes}", name)
    if ann.classes and used <= set(ann.classes):
        return ann.classes, f"derived from the annotation file's taxonomy ({source} lacks some)"
    return sorted(used), "derived from the annotations' labels, sorted"  # type: ignore[arg-type]


def _folder_mismatches(found: list[tuple[AnnotatedVideo, Path]], names: list[str]) -> list[str]:
    """Ids of videos whose folder (in the annotation's path) is a class name they lack."""
    known = set(names)
    out = []
    for v, _ in found:
        folder = Path(v.video_id).parent.name
        labels = {x if isinstance(x, str) else names[x] for x in v.labels}
        if folder in known and folder not in labels:
            out.append(v.video_id)
    return out


def _index(video_dir: Path) -> dict[str, Path]:
    if not video_dir.is_dir():
        raise ManifestError(f"{video_dir}: video folder not found")
    found: dict[str, Path] = {}
    for p in sorted(video_dir.rglob("*")):
        if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file():
            found.setdefault(p.relative_to(video_dir).as_posix(), p)
            found.setdefault(p.stem, p)
    return found


def _duration(path: Path) -> float | None:
    try:
        return open_media(path).duration
    except DataError:
        return None


def _select(
    found: list[tuple[AnnotatedVideo, Path]],
    duration: tuple[float, float] | None,
    per_class: int | None,
    seed: int,
    progress: bool,
) -> tuple[list[tuple[AnnotatedVideo, Path]], dict[str, str]]:
    skipped: dict[str, str] = {}
    if duration is not None:
        lo, hi = duration
        kept = []
        for v, p in tqdm(found, desc="durations", disable=not progress):
            d = _duration(p)
            if d is None or not lo <= d <= hi:
                skipped[v.video_id] = "unreadable" if d is None else f"{d:.0f} s"
            else:
                kept.append((v, p))
        found = kept
    if per_class is not None:
        by_class: dict[str | int, list[int]] = {}
        for i, (v, _) in enumerate(found):
            by_class.setdefault(v.labels[0], []).append(i)
        rng = random.Random(seed)
        chosen = {i for idx in by_class.values() for i in rng.sample(idx, min(per_class, len(idx)))}
        skipped.update(
            {v.video_id: "per-class" for i, (v, _) in enumerate(found) if i not in chosen}
        )
        found = [x for i, x in enumerate(found) if i in chosen]
    return found, skipped


def import_dataset(
    name: str,
    annotations: str | os.PathLike[str],
    video_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    split: str | None = None,
    classes: str | None = None,
    single_label: bool = False,
    duration: tuple[float, float] | None = None,
    per_class: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> ImportResult:
    """Write a manifest and ``classes.txt`` from a paper dataset's official annotation file.

    The class list is the shipped one (`builtin_classes`: ``activitynet``, ``fcvid``,
    ``mini_sports1m``, ``kinetics_sounds``), else the annotations' own (ActivityNet's taxonomy
    leaves, or the sorted labels). Videos in a folder named after a class they are not labelled
    with are counted (``folder_mismatches``; FCVID keeps one folder per category). Videos are
    matched by id to files below ``video_dir`` (any of `VIDEO_EXTENSIONS`); missing ones are
    listed, not fatal.

    Args:
        name: a key of [`IMPORTERS`][adamml.data.importers.IMPORTERS] (``activitynet``,
            ``fcvid``, ``mini-sports1m``, ``kinetics-sounds``).
        annotations: the dataset's annotation file (FCVID: its materials folder).
        video_dir: the folder holding the videos (searched recursively).
        out: the manifest CSV to write; ``classes.txt`` and ``<out>.missing.txt`` go beside it.
        split: keep one split of a file that holds several (``IMPORTERS[name].splits``).
        classes: a class-list file to use instead (for index labels: line i names label i).
        single_label: keep only each video's first label (otherwise several labels make the
            manifest multi-label, targets multi-hot).
        duration: keep videos whose duration in seconds is within ``(min, max)`` (each found
            video is opened); Mini-Sports1M took videos of 2-5 minutes (AdaMML appendix A).
        per_class: keep at most this many videos per class (by first label), drawn with
            ``seed``; Mini-Sports1M has 30 training and 10 test videos per class.
        seed: the draw of ``per_class``.
        progress: show tqdm bars.

    Returns:
        An [`ImportResult`][adamml.data.importers.ImportResult] (print it for a summary).

    Raises:
        ManifestError: unknown dataset or split, a bad ``duration`` or ``per_class``, a
            malformed annotation or class file (the
            message names the file, the line and the expected format), a missing video
            folder, or no annotated video of the class list.

    Example:
        >>> r = import_dataset("activitynet", "activity_net.v1-3.min.json", "videos",
        ...                    "data/anet/train.csv", split="training")  # doctest: +SKIP
    """
    if name not in IMPORTERS:
        raise ManifestError(f"unknown dataset {name!r}; known: {', '.join(IMPORTERS)}")
    importer = IMPORTERS[name]
    if split is not None and split not in importer.splits:
        accepted = ", ".join(importer.splits) or "none: the file is one split already"
        raise ManifestError(f"--split {split!r} does not apply to {name}; accepted: {accepted}")
    if per_class is not None and per_class < 1:
        raise ManifestError(f"--per-class must be at least 1, got {per_class}")
    if duration is not None and not 0 <= duration[0] <= duration[1]:
        raise ManifestError(f"--duration MIN:MAX needs 0 <= MIN <= MAX, got {duration}")
    path, video_dir, out = Path(annotations), Path(video_dir), Path(out)
    try:
        ann = importer.read(path, split)
    except ManifestError as e:
        raise ManifestError(f"{e}; adamml data import {name} expects {importer.expects}") from e
    names, source = _resolve_classes(name, importer, ann, path, classes)
    index = {n: i for i, n in enumerate(names)}
    videos = [v for v in ann.videos if all(x in index or isinstance(x, int) for x in v.labels)]
    if not videos:
        raise _bad(
            path,
            f"no video with a label of the class list ({source})"
            + (f" in split {split!r}" if split else ""),
            name,
        )
    files = _index(video_dir)
    found: list[tuple[AnnotatedVideo, Path]] = []
    missing: list[str] = []
    for v in tqdm(videos, desc=f"{name} videos", disable=not progress):
        p = next((files[n] for n in v.names if n in files), None)
        if p is None:
            missing.append(v.video_id)
        else:
            found.append((v, p))
    found, skipped = _select(found, duration, per_class, seed, progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        for v, p in found:
            labels = [x if isinstance(x, str) else names[x] for x in v.labels]
            w.writerow(
                [os.path.relpath(p, out.parent), ";".join(labels[:1] if single_label else labels)]
            )
    classes_file = out.parent / "classes.txt"
    header = f"# {len(names)} classes of {name}: {source}\n"
    classes_file.write_text(header + "\n".join(names) + "\n", encoding="utf-8")
    result = ImportResult(out, classes_file, source, len(names), len(found), missing)
    result.skipped.update(skipped)
    result.folder_mismatches.extend(_folder_mismatches(found, names))
    missing_file = out.with_name(out.stem + ".missing.txt")
    if missing:
        missing_file.write_text("\n".join(missing) + "\n", encoding="utf-8")
        result.missing_file = missing_file
    elif missing_file.exists():
        missing_file.unlink()  # from an earlier import into the same place
    return result
