"""``adamml data check``: what is wrong with a manifest, and importing the reference's lists."""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError, ManifestError
from .frames import open_media
from .manifest import builtin_classes, read_classes, read_manifest

__all__ = ["ManifestReport", "check_manifest", "import_reference_list"]


@dataclass
class ManifestReport:
    """The result of [`check_manifest`][adamml.data.check.check_manifest].

    Attributes:
        manifest: the checked file.
        num_videos: rows.
        missing: files that do not exist.
        unreadable: file -> error for files that exist but cannot be decoded.
        no_audio: readable videos without an audio track (their spectrograms will be zeros).
        class_counts: class name -> rows (classes with no row included, count 0).
        total_duration: seconds over the readable videos.
    """

    manifest: Path
    num_videos: int = 0
    missing: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    no_audio: list[str] = field(default_factory=list)
    class_counts: dict[str, int] = field(default_factory=dict)
    total_duration: float = 0.0

    @property
    def ok(self) -> bool:
        """No missing or unreadable files."""
        return not self.missing and not self.unreadable

    def __str__(self) -> str:
        empty = [c for c, n in self.class_counts.items() if n == 0]
        lines = [
            f"{self.manifest}: {self.num_videos} videos, {len(self.class_counts)} classes, "
            f"{self.total_duration / 3600:.2f} h",
            f"  missing: {len(self.missing)}, unreadable: {len(self.unreadable)}, "
            f"without audio: {len(self.no_audio)}, classes without videos: {len(empty)}",
        ]
        lines += [f"  missing {p}" for p in self.missing]
        lines += [f"  unreadable {p}: {m}" for p, m in self.unreadable.items()]
        lines += [f"  no audio {p}" for p in self.no_audio]
        return "\n".join(lines)


def check_manifest(
    path: str | os.PathLike[str], classes: list[str] | str | None = None
) -> ManifestReport:
    """Open every file of a manifest and report problems (nothing is raised for bad files).

    Raises:
        ManifestError: the manifest or class list itself is malformed.
    """
    m = read_manifest(path, classes)
    report = ManifestReport(Path(path), num_videos=len(m.entries))
    counts: Counter[int] = Counter(i for e in m.entries for i in e.labels)
    report.class_counts = {c: counts.get(i, 0) for i, c in enumerate(m.classes)}
    for e in m.entries:
        if not e.path.exists():
            report.missing.append(str(e.path))
            continue
        try:
            media = open_media(e.path, audio=e.audio, fps=e.fps)
        except DataError as err:
            report.unreadable[str(e.path)] = f"{type(err).__name__}: {err}"
            continue
        report.total_duration += media.duration
        if not media.has_audio:
            report.no_audio.append(str(e.path))
    return report


def _class_names(classes: list[str] | str | os.PathLike[str]) -> list[str]:
    if isinstance(classes, list):
        return classes
    p = Path(classes)
    return read_classes(p) if p.suffix == ".txt" or p.exists() else builtin_classes(str(classes))


def import_reference_list(
    list_file: str | os.PathLike[str],
    out_csv: str | os.PathLike[str],
    *,
    classes: list[str] | str | os.PathLike[str],
    audio_list: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    fps: float = 29.97,
) -> Path:
    """Convert a reference list file (``path;start;end;label`` lines) into a manifest.

    The reference (§8) lists frame folders (``%05d.jpg``) with integer labels; several labels
    after the third field mean multi-label. Audio lists, aligned line by line, name the WAV files.
    The manifest gets ``path,label,audio,fps`` columns (paths relative to ``out_csv``'s folder)
    and a ``classes.txt`` beside it.

    Args:
        list_file: the reference's ``train.txt``/``val.txt``.
        out_csv: manifest to write.
        classes: class names (index = the reference's integer label), a class-list file or a
            built-in list name (``kinetics_sounds``).
        audio_list: the aligned audio list, if any.
        root: folder the listed paths are relative to (default: the list file's folder).
        fps: frame rate of the extracted frames (the reference assumes 29.97).

    Raises:
        ManifestError: malformed lines, label out of range, or lists of different lengths.
    """
    names = _class_names(classes)
    list_file, out_csv = Path(list_file), Path(out_csv)
    base = Path(root) if root else list_file.parent

    def rows(f: Path) -> list[list[str]]:
        out = []
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                parts = line.strip().split(";") if ";" in line else line.split()
                if len(parts) < 4:
                    raise ManifestError(f"{f}:{n}: expected 'path;start;end;label', got {line!r}")
                out.append(parts)
        return out

    video_rows = rows(list_file)
    audio_rows = rows(Path(audio_list)) if audio_list else None
    if audio_rows is not None and len(audio_rows) != len(video_rows):
        raise ManifestError(
            f"{audio_list}: {len(audio_rows)} lines but {list_file} has "
            f"{len(video_rows)}; the lists must be aligned line by line"
        )
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "audio", "fps"])
        for n, parts in enumerate(video_rows):
            try:
                labels = [names[int(x)] for x in parts[3:]]
            except (ValueError, IndexError) as e:
                raise ManifestError(
                    f"{list_file}:{n + 1}: bad label {parts[3:]} for {len(names)} classes"
                ) from e
            rel = lambda p: os.path.relpath(base / p, out_csv.parent)  # noqa: E731
            audio = rel(audio_rows[n][0]) if audio_rows else ""
            w.writerow([rel(parts[0]), ";".join(labels), audio, fps])
    (out_csv.parent / "classes.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return out_csv
