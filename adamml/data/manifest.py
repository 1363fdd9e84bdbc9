"""Dataset manifests (``path,label`` CSV) and class lists.

A manifest is a CSV file with the header ``path,label``; ``path`` is a video file (or a folder of
``%05d.jpg`` frames) relative to the manifest's folder and ``label`` one or more class names from
``classes.txt`` beside the manifest, separated by ``;`` (multi-label data such as ActivityNet).
Optional columns: ``audio`` (a separate audio/WAV file, relative) and ``fps`` (for frame folders);
any other column is kept as written (``ManifestEntry.columns``), e.g. a modality's side file
(``depth``: a ``.npy`` per video, see `SideFileInput`).
Class lists have one name per line; blank lines and lines starting with ``#`` are ignored.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import ManifestError

__all__ = [
    "ManifestEntry",
    "Manifest",
    "read_manifest",
    "read_classes",
    "builtin_classes",
    "expected_num_classes",
    "EXPECTED_NUM_CLASSES",
    "check_num_classes",
]

_KNOWN_COLUMNS = frozenset({"path", "label", "audio", "fps"})

EXPECTED_NUM_CLASSES = {
    "kinetics_sounds": 31,
    "activitynet": 200,
    "fcvid": 239,
    "mini_sports1m": 487,
}
"""Class counts of the paper's datasets (AdaMML appendix A)."""


def expected_num_classes(name: str) -> int:
    """Number of classes of a paper dataset (``kinetics_sounds``, ``activitynet``, ``fcvid``,
    ``mini_sports1m``; ``-`` and case are ignored).

    Raises:
        ManifestError: unknown dataset name.
    """
    key = name.lower().replace("-", "_").replace(" ", "_").replace("v1.3", "").strip("_")
    if key not in EXPECTED_NUM_CLASSES:
        raise ManifestError(f"unknown dataset {name!r}; known: {', '.join(EXPECTED_NUM_CLASSES)}")
    return EXPECTED_NUM_CLASSES[key]


def _parse_classes(text: str) -> list[str]:
    lines = (ln.strip() for ln in text.splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#")]


def read_classes(path: str | os.PathLike[str]) -> list[str]:
    """Class names from a ``classes.txt`` file (one per line, ``#`` comments).

    Raises:
        ManifestError: missing file, empty list or duplicate names.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: class list not found (one class name per line)")
    names = _parse_classes(path.read_text(encoding="utf-8"))
    if not names:
        raise ManifestError(f"{path}: the class list is empty")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ManifestError(f"{path}: duplicate class names {dup}")
    return names


def builtin_classes(name: str) -> list[str]:
    """A class list shipped with adamml (``adamml/data/classes/<name>.txt``):
    ``kinetics_sounds`` (31), ``activitynet`` (200, ActivityNet v1.3), ``fcvid`` (239) and
    ``mini_sports1m`` (487, the Sports-1M labels). Each file's header says where its names come
    from (FCVID's from a secondary source: see its header).

    Raises:
        ManifestError: no such list.
    """
    folder = resources.files("adamml.data") / "classes"
    files = folder / f"{name}.txt"
    if not files.is_file():
        shipped = sorted(f.name[:-4] for f in folder.iterdir() if f.name.endswith(".txt"))
        raise ManifestError(f"no built-in class list {name!r}; shipped: {', '.join(shipped)}")
    return _parse_classes(files.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class ManifestEntry:
    """One manifest row: absolute media path, class indices, optional audio file and fps, and
    the row's other columns as written (``{name: value}``, for modalities' side files)."""

    path: Path
    labels: tuple[int, ...]
    audio: Path | None = None
    fps: float | None = None
    columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest: its rows, class names and whether any row has several labels."""

    path: Path
    entries: list[ManifestEntry]
    classes: list[str]

    @property
    def multi_label(self) -> bool:
        """True when any row has more than one label (targets are multi-hot)."""
        return any(len(e.labels) != 1 for e in self.entries)


def read_manifest(path: str | os.PathLike[str], classes: list[str] | str | None = None) -> Manifest:
    """Parse a ``path,label`` manifest.

    Args:
        path: the CSV file.
        classes: class names, a class-list file, or ``None`` for ``classes.txt`` beside the
            manifest.

    Raises:
        ManifestError: missing file or header, empty rows, unknown class names (with the line).
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    if classes is None or isinstance(classes, (str, os.PathLike)):
        classes = read_classes(classes or path.parent / "classes.txt")
    index = {c: i for i, c in enumerate(classes)}
    root = path.parent
    entries: list[ManifestEntry] = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise ManifestError(
                f"{path}: the header must be 'path,label' (got {reader.fieldnames})"
            )
        for line, row in enumerate(reader, start=2):
            rel, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
            if not rel or not label:
                raise ManifestError(f"{path}:{line}: empty path or label")
            names = [n.strip() for n in label.split(";") if n.strip()]
            unknown = [n for n in names if n not in index]
            if unknown:
                raise ManifestError(
                    f"{path}:{line}: unknown class {unknown[0]!r} "
                    f"(not in the class list of {len(classes)} names)"
                )
            audio = (row.get("audio") or "").strip()
            fps = (row.get("fps") or "").strip()
            entries.append(
                ManifestEntry(
                    root / rel,
                    tuple(index[n] for n in names),
                    root / audio if audio else None,
                    float(fps) if fps else None,
                    {k: (v or "").strip() for k, v in row.items() if k and k not in _KNOWN_COLUMNS},
                )
            )
    return Manifest(path, entries, list(classes))


def check_num_classes(manifest: Manifest, num_classes: int) -> None:
    """Check that a model with ``num_classes`` outputs fits the manifest's class list, both
    ways, before any training or evaluation starts (a label past K would fail deep inside the
    loss; a K past the list would train classes no video has).

    Raises:
        ManifestError: naming the manifest, both counts and what to change.
    """
    found = len(manifest.classes)
    if found == num_classes:
        return
    raise ManifestError(
        f"{manifest.path}: its class list (classes.txt beside it) has {found} classes but the "
        f"model has num_classes={num_classes}; set num_classes: {found} in the config (for "
        f"adamml eval: use a checkpoint trained on these {found} classes), or edit classes.txt"
    )
