"""The policy's look at motion: decoder motion vectors (adamml-mv) against the RGB difference.

``adamml_rgb_flow_mv`` (the example plugin ``examples/plugins/adamml-mv``) is
``adamml_rgb_flow_rgbdiff`` with ``mv`` in place of ``rgbdiff``: the policy looks at RGB and
a cheap motion proxy, the router runs RGB and optical flow where the policy selects them. This
trains the tiny twins of both (``test_adamml_rgb_flow_mv``, ``test_adamml_rgb_flow_rgbdiff``)
on the same SyntheticAV mp4 files with the same config and seed through the engine
``adamml train`` runs (`adamml.engine.Trainer`: the pre-training stages, warm-up, joint,
fine-tune), and reports per model and seed

- top-1, selection rates (rgb, flow) and GFLOPs per video from the run's ``metrics.json``;
- end-to-end seconds per validation video on the default user path,

      x = adamml.data.load_video_inputs(path, model, segments=S, flow_method="dis")
      out = model(x)                  # under torch.inference_mode(), the policy decides

  (decode, RGB frames, the proxy, the policy, flow computed on demand for the selected
  segments only, the recognition backbones), split into exclusively timed parts as
  ``end_to_end.py`` does, the proxy being the ``make`` of its producer (``RGBDifference``
  or the plugin's ``MotionVectors``, whose own decoding pass counts in it);
- the proxy's marginal cost: ``load_video_inputs`` for the model minus ``load_video_inputs``
  for the same RGB and flow inputs without the proxy (flow on demand, so not computed), timed
  back to back. This also catches what the exclusive part cannot: the RGB difference's extra
  decoded frames and their scaling (shared with the RGB frames' producer).

The two models are timed alternately, video by video, after one warm-up video each, so load
on the machine falls on both; ratios (mv / rgbdiff) are of numbers measured in this run. One
torch and one OpenCV thread by default: on a shared 2-core machine under load, two torch
threads made the tiny models' 50-ms forward take up to 2 s (threads waiting for each other).

Data: ``write_synthetic_av`` (64x64, 160 frames at 12.5 fps, libx264 crf 18 preset veryfast
g=16 with x264's default B-frames; the script counts the picture types and the frames that
carry motion vectors). Training reads DIS optical flow stored once by
``adamml.data.extract.extract_flow`` (``data.flow_dir``), shared by every run; computing it in
every pass would multiply the training time several-fold. The end-to-end pass computes DIS flow
on demand from the frames, as a user would.

``--mini`` (default) trains on 24 videos of 4 classes for two seeds (about 15 minutes on a
shared 2-core machine; the models train one after the other) with ``policy_start:
immediate``: with the default ``auto``, runs this short never brought validation
cross-entropy below the uniform prediction's, so every policy pass was held and both policies
stayed the pre-trained ones. ``--full`` trains on 160 videos of 6 classes for 3 seeds with the
library's defaults.

Usage::

    python benchmarks/mv_vs_rgbdiff.py                       # --mini
    python benchmarks/mv_vs_rgbdiff.py --seeds 0             # one seed
    python benchmarks/mv_vs_rgbdiff.py --full --work runs/mv # keep the data and runs

Writes ``benchmarks/results/mv-vs-rgbdiff-<date>.json`` (``--json`` to change).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from statistics import mean, median
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import av
import cv2
import numpy as np
import torch
from _common import cpu_model
from end_to_end import Timers

import adamml
from adamml.data import flowclip as flowclip_module
from adamml.data.decode import VideoReader
from adamml.data.producers import RGBDifference, RGBFrames

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "plugins" / "adamml-mv"
MODELS = {"rgbdiff": "test_adamml_rgb_flow_rgbdiff", "mv": "test_adamml_rgb_flow_mv"}
PARTS = ("decode", "rgb frames", "proxy", "policy", "flow", "backbones", "other")
ENCODER = "libx264 crf 18 preset veryfast g=16, x264's default B-frames (adamml's write_video)"


@dataclass(frozen=True)
class Settings:
    """What one run trains on and how long."""

    train: int
    val: int
    num_classes: int
    segments_train: int
    segments_eval: int
    pretrain_epochs: int
    warmup_epochs: int
    joint_epochs: int
    finetune_epochs: int
    batch_size: int
    seeds: tuple[int, ...]
    policy_start: str
    data_seed: int = 0


# mini: 4 classes (two told apart only by the direction of motion) so that 6 videos per class
# reach above chance in minutes; the policy passes run from the first joint epoch, since with
# ``policy_start: auto`` (the default) the recognition networks of so short a run did not beat
# the uniform prediction on validation and every policy pass was held (both policies then
# stay the pre-trained ones and select everything: nothing left to compare)
MINI = Settings(24, 12, 4, 3, 10, 3, 2, 4, 2, 4, (0, 1), "immediate")
FULL = Settings(160, 48, 6, 5, 10, 10, 3, 8, 3, 8, (0, 1, 2), "auto")


def register_plugin(tmp: Path) -> str:
    """Make the plugin's models known: installed, or its ``pyproject.toml`` entry points in a
    temporary ``.dist-info`` and its ``src/`` on ``sys.path`` (as its own tests do)."""
    try:
        return f"installed {importlib.metadata.version('adamml-mv')}"
    except importlib.metadata.PackageNotFoundError:
        pass
    import tomllib  # Python 3.11+; on 3.10, pip install the plugin instead

    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    info = tmp / f"adamml_mv-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = []
    for group, entries in project["entry-points"].items():
        lines += [f"[{group}]", *(f"{k} = {v}" for k, v in entries.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    sys.path[:0] = [str(tmp), str(PLUGIN / "src")]
    for registry in (adamml.MODALITIES, adamml.BACKBONES, adamml.MODELS):
        registry.reload_plugins()
    return f"source tree {project['version']} (temporary .dist-info)"


def stream_stats(videos: list[Path]) -> dict[str, Any]:
    """Picture types and the frames whose side data carries motion vectors, over all videos."""
    counts: dict[str, list[int]] = {"I": [], "P": [], "B": [], "with_vectors": []}
    for path in videos:
        seen = dict.fromkeys(counts, 0)
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            stream.codec_context.options = {"flags2": "+export_mvs"}
            for frame in c.decode(stream):
                seen[" IPB"[int(frame.pict_type)]] += 1
                seen["with_vectors"] += frame.side_data.get("MOTION_VECTORS") is not None
        for k, v in seen.items():
            counts[k].append(v)
    total = sum(counts["I"]) + sum(counts["P"]) + sum(counts["B"])
    return {
        "videos": len(videos),
        **{f"{k} per video (min, mean, max)": _spread(v) for k, v in counts.items()},
        "share of frames with vectors": sum(counts["with_vectors"]) / total,
    }


def _spread(values: list[int]) -> list[float]:
    return [min(values), round(mean(values), 1), max(values)]


def train(name: str, data: Path, s: Settings, seed: int, out: Path) -> tuple[dict, float]:
    """One ``adamml train`` run (pre-training stages, warm-up, joint, fine-tune): its
    ``metrics.json`` and wall seconds. The trainer's own lines go to ``out/train.txt``."""
    from adamml.engine import TrainConfig, Trainer

    cfg = TrainConfig.from_dict(
        {
            "model": name,
            "num_classes": s.num_classes,
            "data": {
                "train": str(data / "train.csv"),
                "val": str(data / "val.csv"),
                "segments_train": s.segments_train,
                "segments_eval": s.segments_eval,
                "flow_method": "dis",
                "flow_dir": str(data / "flow"),
            },
            "schedule": {
                "warmup_epochs": s.warmup_epochs,
                "joint_epochs": s.joint_epochs,
                "finetune_epochs": s.finetune_epochs,
            },
            "pretrain": {"epochs": s.pretrain_epochs},
            "batch_size": s.batch_size,
            "seed": seed,
            "policy_start": s.policy_start,
        }
    )
    out.mkdir(parents=True)
    start = time.perf_counter()
    with open(out / "train.txt", "w") as log, contextlib.redirect_stdout(log):
        metrics = Trainer(cfg, out, show_progress=False).run()
    return metrics, time.perf_counter() - start


def policy_passes(out: Path) -> list[int]:
    """``[trained, planned]`` joint policy passes of a run: ``policy_start: auto`` holds them
    while validation cross-entropy is not below the uniform prediction's."""
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    policy = [r for r in records if r.get("phase") == "policy"]
    return [sum("train" in r for r in policy), len(policy)]


@contextlib.contextmanager
def patched(timers: Timers, model: torch.nn.Module) -> Iterator[None]:
    """Time the user path's parts exclusively while the block runs."""
    from adamml_mv.producer import MotionVectors

    targets = [
        (VideoReader, "get_frames", "decode"),
        (RGBFrames, "make", "rgb frames"),
        (RGBDifference, "make", "proxy"),
        (MotionVectors, "make", "proxy"),
        (flowclip_module, "optical_flow_batch", "flow"),
    ]
    hooks = timers.hook(model.policy, "policy")
    for net in model.router.backbones.values():
        hooks += timers.hook(net, "backbones")
    saved = [(owner, name, owner.__dict__[name]) for owner, name, _ in targets]
    for owner, name, part in targets:
        setattr(owner, name, timers.wrap(part, getattr(owner, name)))
    try:
        yield
    finally:
        for h in hooks:
            h.remove()
        for owner, name, value in saved:
            setattr(owner, name, value)


def time_video(model: Any, base: dict, path: Path, segments: int) -> dict[str, Any]:
    """One video through the user path (timed by parts), then the same inputs without the
    proxy (``base``: RGB and on-demand flow) for the proxy's marginal cost."""
    timers = Timers()
    with torch.inference_mode(), patched(timers, model):
        start = time.perf_counter()
        x = adamml.data.load_video_inputs(path, model, segments=segments, flow_method="dis")
        loaded = time.perf_counter() - start
        out = model(x)
        total = time.perf_counter() - start
    start = time.perf_counter()
    adamml.data.load_video_inputs(
        path, base, segments=segments, flow_method="dis", flow_on_demand=True
    )
    without = time.perf_counter() - start
    parts = {p: timers.seconds.get(p, 0.0) for p in PARTS[:-1]}
    parts["other"] = total - sum(parts.values())
    return {
        "total": total,
        "parts": parts,
        "load": loaded,
        "load_without_proxy": without,
        "prediction": int(out.logits.argmax(1)),
        "decisions": out.decisions[0].tolist(),
        "gflops": float(out.gflops[0]),
    }


def end_to_end(
    checkpoints: dict[str, Path], videos: list[tuple[Path, int]], segments: int
) -> dict[str, dict[str, Any]]:
    """Every validation video through both models, alternately (after a warm-up video)."""
    from adamml.engine import model_from_checkpoint

    models = {k: model_from_checkpoint(p)[0].eval() for k, p in checkpoints.items()}
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in models}
    for i, (path, _) in enumerate([videos[0], *videos]):
        for key, model in models.items():
            base = {m: model.input_spec[m] for m in model.modalities}  # rgb, flow: no proxy
            row = time_video(model, base, path, segments)
            if i:  # the first pass is the warm-up (inference copies, oneDNN primitives)
                rows[key].append(row)
    labels = [label for _, label in videos]
    return {k: summarise(r, labels, models[k].modalities) for k, r in rows.items()}


def summarise(rows: list[dict], labels: list[int], modalities: tuple[str, ...]) -> dict:
    """Means per video (medians for the proxy's marginal cost, a difference of two timings)."""
    decisions = np.array([r["decisions"] for r in rows])  # (N, S, M)
    return {
        "videos": len(rows),
        "top1": 100.0 * mean(r["prediction"] == y for r, y in zip(rows, labels)),
        "selection_rate": {
            m: 100.0 * float(decisions[..., k].mean()) for k, m in enumerate(modalities)
        },
        "gflops": mean(r["gflops"] for r in rows),
        "seconds": mean(r["total"] for r in rows),
        "parts": {p: mean(r["parts"][p] for r in rows) for p in PARTS},
        "load_seconds": mean(r["load"] for r in rows),
        "proxy_marginal_seconds": median(r["load"] - r["load_without_proxy"] for r in rows),
    }


def table(runs: list[dict[str, Any]]) -> list[str]:
    """Markdown rows: per seed, the mean over seeds, and mv / rgbdiff."""
    head = (
        "| model | seed | top-1 % | top-1 % end to end | rgb % | flow % | GFLOPs/video | "
        "s/video end to end | proxy ms (exclusive) | proxy ms (marginal) | "
        + " | ".join(f"{p} ms" for p in PARTS if p != "proxy")
        + " | train s | policy passes trained |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]

    def cells(r: dict[str, Any]) -> list[float]:
        m, e = r["metrics"], r["end_to_end"]
        return [
            m["top1"],
            e["top1"],
            m["selection_rate"]["rgb"],
            m["selection_rate"]["flow"],
            m["gflops"],
            e["seconds"],
            1e3 * e["parts"]["proxy"],
            1e3 * e["proxy_marginal_seconds"],
            *(1e3 * e["parts"][p] for p in PARTS if p != "proxy"),
            r["train_seconds"],
        ]

    def fmt(values: list[float]) -> str:
        out = [f"{v:.1f}" for v in values[:4]] + [f"{values[4]:.5f}", f"{values[5]:.3f}"]
        return " | ".join(out + [f"{v:.1f}" for v in values[6:-1]] + [f"{values[-1]:.0f}"])

    def passes(r: dict[str, Any]) -> str:
        return "{} of {}".format(*r["policy_passes"])

    means = {}
    for key in MODELS:
        mine = [r for r in runs if r["proxy"] == key]
        for r in mine:
            lines.append(f"| {r['model']} | {r['seed']} | {fmt(cells(r))} | {passes(r)} |")
        means[key] = [mean(c) for c in zip(*(cells(r) for r in mine))]
        if len(mine) > 1:
            lines.append(f"| {MODELS[key]} | mean | {fmt(means[key])} | - |")
    ratio = [a / b if b else float("nan") for a, b in zip(means["mv"], means["rgbdiff"])]
    lines.append(
        "| mv / rgbdiff | ratio | - | - | - | - | "
        + " | ".join(f"{v:.2f}" for v in ratio[4:-1])
        + " | - | - |"  # the trainings ran one after the other: load differs, no ratio
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--mini", action="store_true", help="24 train / 12 val, 2 seeds (default)")
    size.add_argument("--full", action="store_true", help="160 train / 48 val, 3 seeds")
    parser.add_argument("--seeds", type=int, nargs="+", help="training seeds (default per size)")
    parser.add_argument(
        "--policy-start",
        choices=("auto", "immediate"),
        help="when the joint policy passes start (default: immediate for --mini, auto for --full)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch and OpenCV threads (1: on a shared 2-core machine under load, two torch "
        "threads made the tiny models' 50-ms forward take up to 2 s)",
    )
    parser.add_argument("--work", help="keep the data and runs in this folder (default: temp)")
    parser.add_argument(
        "--json",
        default=str(
            Path(__file__).parent / "results" / f"mv-vs-rgbdiff-{datetime.date.today()}.json"
        ),
    )
    args = parser.parse_args()
    s = FULL if args.full else MINI
    if args.seeds:
        s = replace(s, seeds=tuple(args.seeds))
    if args.policy_start:
        s = replace(s, policy_start=args.policy_start)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)  # DIS flow and the resizes
    wall: dict[str, float] = defaultdict(float)
    begun = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        plugin = register_plugin(Path(tmp) / "plugin")
        data = work / "data"
        from adamml.data.extract import extract_flow
        from adamml.data.manifest import read_manifest
        from adamml.data.synthetic import write_synthetic_av

        t = time.perf_counter()
        if not (data / "val.csv").exists():
            write_synthetic_av(
                data, s.train, num_val=s.val, num_classes=s.num_classes, seed=s.data_seed
            )
        videos = sorted(data.glob("videos/*/*.mp4"))
        wall["write videos"] = time.perf_counter() - t
        t = time.perf_counter()
        stats = stream_stats(videos)
        wall["stream stats"] = time.perf_counter() - t
        t = time.perf_counter()
        extract_flow(videos, data / "flow", root=data, method="dis", progress=False)
        wall["extract flow"] = time.perf_counter() - t
        val_videos = [(e.path, e.labels[0]) for e in read_manifest(data / "val.csv").entries]
        labels = [y for _, y in val_videos]
        train_counts = np.bincount(
            [e.labels[0] for e in read_manifest(data / "train.csv").entries],
            minlength=s.num_classes,
        )
        majority = 100.0 * mean(y == int(train_counts.argmax()) for y in labels)
        print(
            f"# mv_vs_rgbdiff: {cpu_model()}, {torch.get_num_threads()} torch and "
            f"{cv2.getNumThreads()} OpenCV threads, torch "
            f"{torch.__version__}, PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info}), "
            f"adamml-mv {plugin}"
        )
        print(
            f"# SyntheticAV 64x64, 160 frames, {s.num_classes} classes, {s.train} train / "
            f"{s.val} val (data seed {s.data_seed}); {ENCODER}; frames per video I "
            f"{stats['I per video (min, mean, max)']}, P {stats['P per video (min, mean, max)']}"
            f", B {stats['B per video (min, mean, max)']}; "
            f"{100 * stats['share of frames with vectors']:.1f} % of frames carry vectors"
        )
        print(
            f"# train: pre-training {s.pretrain_epochs} epochs per part, warm-up / joint / "
            f"fine-tune {s.warmup_epochs} / {s.joint_epochs} / {s.finetune_epochs}, "
            f"{s.segments_train} segments, batch {s.batch_size}, policy_start {s.policy_start}, "
            f"stored DIS flow; eval and end "
            f"to end: {s.segments_eval} segments, DIS flow on demand",
            flush=True,
        )
        runs = []
        for seed in s.seeds:
            checkpoints = {}
            for key, name in MODELS.items():
                out = work / f"seed{seed}" / name
                metrics, seconds = train(name, data, s, seed, out)
                wall["train"] += seconds
                checkpoints[key] = out / "best.pt"
                runs.append(
                    {
                        "model": name,
                        "proxy": key,
                        "seed": seed,
                        "metrics": metrics,
                        "train_seconds": seconds,
                        "policy_passes": policy_passes(out),
                    }
                )
                print(
                    f"# seed {seed} {name}: top-1 {metrics['top1']:.1f} %, trained in "
                    f"{seconds:.0f} s",
                    flush=True,
                )
            t = time.perf_counter()
            timed = end_to_end(checkpoints, val_videos, s.segments_eval)
            wall["end to end"] += time.perf_counter() - t
            for r in runs[-len(MODELS) :]:
                r["end_to_end"] = timed[r["proxy"]]
        lines = table(runs)
        print("\n".join(lines))
        print(
            f"# chance: {100 / s.num_classes:.1f} %; the training set's most frequent class "
            f"is {majority:.1f} % of the validation videos"
        )
        wall["total"] = time.perf_counter() - begun
        print("# wall seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in wall.items()))
    record = {
        "benchmark": "mv_vs_rgbdiff",
        "date": str(datetime.date.today()),
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "opencv_threads": cv2.getNumThreads(),
        "torch": torch.__version__,
        "pyav": av.__version__,
        "ffmpeg": str(av.ffmpeg_version_info),
        "plugin": plugin,
        "encoder": ENCODER,
        "settings": asdict(s),
        "stream_stats": stats,
        "train_label_counts": train_counts.tolist(),
        "val_label_counts": np.bincount(labels, minlength=s.num_classes).tolist(),
        "majority_class_val_top1": majority,
        "runs": runs,
        "table": lines,
        "wall_seconds": dict(wall),
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    print(f"# wrote {args.json}")


if __name__ == "__main__":
    main()
