"""argparse entry points for ``adamml extract ...``, ``adamml data check`` and
``adamml data import`` (wired by the CLI).

Each ``run_*`` returns an exit status and prints a one-line message (no traceback) on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import AdamMLError
from .check import check_manifest
from .extract import ExtractResult, ExtractRun, extract_audio, extract_flow, extract_frames
from .flow import FLOW_METHODS
from .importers import IMPORTERS, import_dataset
from .manifest import read_manifest

__all__ = [
    "add_extract_arguments",
    "run_extract",
    "add_check_arguments",
    "run_check",
    "add_import_arguments",
    "run_import",
]

_EXTRACTORS: dict[str, tuple[Callable[..., ExtractResult], tuple[str, ...]]] = {
    "flow": (extract_flow, ("method", "reduced", "flow_size", "device")),
    "frames": (extract_frames, ("short_side",)),
    "audio": (extract_audio, ("sample_rate",)),
}
"""Each kind of ``adamml extract``: its function and the options of the command line it takes
(beside the `ExtractRun` ones every kind takes)."""


def add_extract_arguments(parser: argparse.ArgumentParser) -> None:
    """``extract {flow,frames,audio} INPUT... --out DIR [--workers N] [--method M] ...``.

    ``INPUT`` is a manifest CSV (its videos, named relative to its folder) or video files.
    """
    parser.add_argument("kind", choices=list(_EXTRACTORS), help="what to extract")
    parser.add_argument("inputs", nargs="+", help="a manifest CSV or video files")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes")
    parser.add_argument(
        "--method",
        default="tvl1",
        choices=FLOW_METHODS,
        help="optical-flow method (flow only; tvl1 is the paper's)",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="where raft_small runs (e.g. cuda); the OpenCV methods use the CPU",
    )
    parser.add_argument("--reduced", action="store_true", help="faster reduced TV-L1 settings")
    parser.add_argument(
        "--flow-size", type=int, default=256, help="shorter side of the frames flow is computed on"
    )
    parser.add_argument("--short-side", type=int, default=256, help="frames: shorter side")
    parser.add_argument("--sample-rate", type=int, default=24000, help="audio: Hz")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _videos(inputs: list[str]) -> tuple[list[Path], Path | None]:
    if len(inputs) == 1 and inputs[0].endswith(".csv"):
        m = read_manifest(inputs[0])
        return [e.path for e in m.entries], m.path.parent
    return [Path(p) for p in inputs], None


def run_extract(args: argparse.Namespace) -> int:
    """Run an extraction; 0 when every video succeeded, 1 when some failed, 2 on bad input."""
    try:
        videos, root = _videos(args.inputs)
        run: ExtractRun = {"root": root, "workers": args.workers, "progress": not args.no_progress}
        extract, names = _EXTRACTORS[args.kind]
        options: dict[str, Any] = {name: getattr(args, name) for name in names}
        result = extract(videos, args.out, **options, **run)
    except AdamMLError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"{args.kind}: {len(result.written)} written, {len(result.skipped)} already done, "
        f"{len(result.failed)} failed"
    )
    for video, err in result.failed.items():
        print(f"  failed {video}: {err}", file=sys.stderr)
    return 1 if result.failed else 0


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    """``data check MANIFEST [--classes FILE] [--json]``."""
    parser.add_argument("manifest", help="a path,label manifest CSV")
    parser.add_argument("--classes", default=None, help="class list (default: classes.txt beside)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run_check(args: argparse.Namespace) -> int:
    """Print the manifest report; 0 when every file is readable, 1 otherwise, 2 on bad input."""
    try:
        report = check_manifest(args.manifest, args.classes)
    except AdamMLError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(
            json.dumps(
                {**report.__dict__, "manifest": str(report.manifest), "ok": report.ok}, indent=2
            )
        )
    else:
        print(report)
    return 0 if report.ok else 1


def _duration_range(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition(":")
    try:
        return float(lo or 0), float(hi) if hi else float("inf")
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected MIN:MAX seconds (e.g. 120:300), got {text!r}"
        ) from None


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    """``data import DATASET ANNOTATIONS VIDEO_DIR OUT [--split S] [--classes FILE] ...``."""
    formats = "; ".join(f"{name}: {imp.expects}" for name, imp in IMPORTERS.items())
    parser.description = f"Annotation formats. {formats}."
    parser.add_argument("dataset", choices=list(IMPORTERS), help="which dataset's format")
    parser.add_argument("annotations", help="the dataset's annotation file (FCVID: its folder)")
    parser.add_argument("video_dir", help="folder holding the videos (searched recursively)")
    parser.add_argument("out", help="manifest CSV to write (classes.txt goes beside it)")
    splits = sorted({s for imp in IMPORTERS.values() for s in imp.splits})
    parser.add_argument("--split", default=None, help=f"keep one split ({', '.join(splits)})")
    parser.add_argument(
        "--classes", default=None, help="class list to use (index labels: line i names label i)"
    )
    parser.add_argument(
        "--single-label", action="store_true", help="keep only each video's first label"
    )
    parser.add_argument(
        "--duration",
        type=_duration_range,
        default=None,
        metavar="MIN:MAX",
        help="keep videos this long, in seconds (Mini-Sports1M: 120:300)",
    )
    parser.add_argument(
        "--per-class", type=int, default=None, help="at most N videos per class (by first label)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the --per-class draw")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_import(args: argparse.Namespace) -> int:
    """Write the manifest; 0 when it has videos (missing ones are listed, not an error), 1 when
    none was found on disk, 2 on bad input."""
    try:
        result = import_dataset(
            args.dataset,
            args.annotations,
            args.video_dir,
            args.out,
            split=args.split,
            classes=args.classes,
            single_label=args.single_label,
            duration=args.duration,
            per_class=args.per_class,
            seed=args.seed,
            progress=not args.no_progress,
        )
    except AdamMLError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(result)
    if result.num_videos == 0:
        where = f"; the ids looked for are in {result.missing_file}" if result.missing else ""
        print(
            f"error: the manifest is empty: no video left from {args.video_dir}{where}",
            file=sys.stderr,
        )
        return 1
    return 0
