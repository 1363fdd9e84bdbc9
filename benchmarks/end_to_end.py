"""From a video file to logits: where the time goes, AdaMML against weighted fusion.

For ``fusion_rgb_audio``, ``adamml_rgb_audio``, ``fusion_rgb_flow`` and
``adamml_rgb_flow_rgbdiff`` (full size), this runs what a user runs,

    x = adamml.data.load_video_inputs(path, model, flow_method=M)
    logits = model.eval()(x, decisions=d).logits       # under torch.inference_mode()

after one warm-up call that builds the backbones' inference copies (a served model is warm) and
one untimed decode of the file (a warm file cache for every row),
with decisions forced to the paper's operating points (AdaMML Table 1: RGB 46 %, audio 94 %;
Table 2: RGB 45 %, flow 37 %), once per flow method (``tvl1``, the paper's, and ``dis``), and
splits the wall time into decoding, audio features (log-spectrograms), RGB frames (resize, crop,
normalise), RGB difference, optical flow, the policy, the recognition backbones and the rest,
by timing those functions exclusively (time in a nested timed call counts once, for the inner
one). Each AdaMML row is divided by its fusion row measured in the same run. Flow for the
AdaMML-RGBDiff model is computed on demand, only for the segments whose flow decision is on.

The input is any video file (``--video``) or, by default, a SyntheticAV video written at
1280x720 with audio.

Each row is the mean of ``--repeats`` passes (``--flow-repeats`` for the flow models), the
fusion model and its AdaMML model timed in turn. A selection rate is an average over the
passes: each modality is on for ``ceil(rate x passes x S)`` segments in all, so the rates
shown are the operating point or just above it (one 10-segment pass alone would round RGB 45 %
to 40 %, below it).

Usage: ``python benchmarks/end_to_end.py [--video FILE] [--methods tvl1 dis] [--threads 2]``
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from _common import cpu_model

import adamml
from adamml.data import decode as decode_module
from adamml.data import flowclip as flowclip_module
from adamml.data import producers as producers_module

PARTS = (
    "decode",
    "audio features",
    "rgb frames",
    "rgb difference",
    "flow",
    "policy",
    "backbones",
    "other",
)
OPERATING_POINTS = {
    "adamml_rgb_audio": {"rgb": 0.46, "audio": 0.94},
    "adamml_rgb_flow_rgbdiff": {"rgb": 0.45, "flow": 0.37},
}
PAIRS = (("fusion_rgb_audio", "adamml_rgb_audio"), ("fusion_rgb_flow", "adamml_rgb_flow_rgbdiff"))


class Timers:
    """Exclusive wall time per part: a timed call's time minus its timed sub-calls'."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[list[float]] = []

    def start(self) -> None:
        self._stack.append([time.perf_counter(), 0.0])

    def stop(self, part: str) -> None:
        begun, inner = self._stack.pop()
        elapsed = time.perf_counter() - begun
        self.seconds[part] += elapsed - inner
        if self._stack:
            self._stack[-1][1] += elapsed

    def wrap(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        # keeps fn's signature: the pipeline asks whether a frame getter takes `short`
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.start()
            try:
                return fn(*args, **kwargs)
            finally:
                self.stop(part)

        return timed

    def hook(self, module: torch.nn.Module, part: str) -> list[Any]:
        """Time a module's calls with forward hooks (a patched ``forward`` would be copied
        into the backbones' inference copies, which call their original)."""
        return [
            module.register_forward_pre_hook(lambda *_: self.start()),
            module.register_forward_hook(lambda *_: self.stop(part)),
        ]


@contextlib.contextmanager
def patched(timers: Timers, model: torch.nn.Module) -> Iterator[None]:
    """Time the pipeline's stages by wrapping them for the duration of the block."""
    targets = [
        (decode_module.VideoReader, "get_frames_at", "decode"),
        (decode_module.VideoReader, "get_audio", "decode"),
        (producers_module, "log_spectrogram", "audio features"),
        (producers_module.RGBFrames, "make", "rgb frames"),
        (producers_module.RGBDifference, "make", "rgb difference"),
        (flowclip_module, "optical_flow_batch", "flow"),
    ]
    hooks = timers.hook(model.policy, "policy")
    for net in model.router.backbones.values():
        hooks += timers.hook(net, "backbones")
    saved = []
    for owner, name, part in targets:
        original = getattr(owner, name)
        saved.append((owner, name, owner.__dict__.get(name, None), name in owner.__dict__))
        setattr(owner, name, timers.wrap(part, original))
    try:
        yield
    finally:
        for h in hooks:
            h.remove()
        for owner, name, value, had in saved:
            if had:
                setattr(owner, name, value)
            else:
                delattr(owner, name)


def write_720p(folder: Path, frames: int = 160, fps: float = 12.5) -> Path:
    """A SyntheticAV video (``frames`` at ``fps``, 12.8 s by default, with its audio track)
    scaled to 1280x720, as mp4."""
    import cv2

    from adamml.data.synthetic import SyntheticAV
    from adamml.data.synthetic.writer import write_video

    video = SyntheticAV(1, seed=0, size=128, frames=frames, fps=fps).video(0)
    scaled = np.stack(
        [cv2.resize(f, (1280, 720), interpolation=cv2.INTER_LINEAR) for f in video.frames]
    )
    path = folder / "synthetic_720p.mp4"
    from dataclasses import replace

    write_video(path, replace(video, frames=scaled))
    return path


def forced(
    model: torch.nn.Module, rates: dict[str, float] | None, segments: int, passes: int
) -> list[torch.Tensor]:
    """One ``(1, S, M)`` decision tensor per pass (all on for fusion). Over the passes, each
    modality is on for ``ceil(rate x passes x S)`` segments, spread over the passes as evenly
    as they go (at random within a pass): the operating point or just above it, never below,
    so that one 10-segment video does not round AdaMML's RGB 45 % down to 40 %."""
    m = len(model.modalities)
    if rates is None:
        return [torch.ones(1, segments, m) for _ in range(passes)]
    g = torch.Generator().manual_seed(0)
    out = [torch.zeros(1, segments, m) for _ in range(passes)]
    for k, name in enumerate(model.modalities):
        total = math.ceil(rates[name] * passes * segments - 1e-9)
        counts = [total // passes + (i < total % passes) for i in range(passes)]
        for d, i in zip(out, torch.randperm(passes, generator=g).tolist()):
            d[0, torch.randperm(segments, generator=g)[: counts[i]], k] = 1.0
    return out


def prepare(
    name: str, segments: int, passes: int, precision: str = "fp32"
) -> tuple[Any, list[torch.Tensor]]:
    """The model in eval, warm (its backbones' inference copies built), and the decisions of
    each pass."""
    model = adamml.create_model(name, num_classes=31, precision=precision).eval()
    ds = forced(model, OPERATING_POINTS.get(name), segments, passes)
    with torch.inference_mode():  # warm-up: the backbones' inference copies are built once
        model(
            {m: torch.zeros(1, segments, *s.shape) for m, s in model.input_spec.items()},
            decisions=torch.ones_like(ds[0]),
        )
    return model, ds


def run(
    model: Any, d: torch.Tensor, video: Path, method: str, segments: int
) -> tuple[float, dict[str, float]]:
    """One end-to-end pass: total seconds and exclusive seconds per part."""
    timers = Timers()
    with torch.inference_mode(), patched(timers, model):
        start = time.perf_counter()
        x = adamml.data.load_video_inputs(video, model, segments=segments, flow_method=method)
        model(x, decisions=d)
        total = time.perf_counter() - start
    parts = {p: timers.seconds.get(p, 0.0) for p in PARTS[:-1]}
    parts["other"] = total - sum(parts.values())
    return total, parts


def mean_pass(passes: list[tuple[float, dict[str, float]]]) -> tuple[float, dict[str, float]]:
    """The mean total and mean parts of the passes (their decisions together make the
    operating point)."""
    n = len(passes)
    return sum(t for t, _ in passes) / n, {p: sum(q[p] for _, q in passes) / n for p in PARTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", help="any video file (default: a SyntheticAV video at 720p)")
    parser.add_argument(
        "--frames",
        type=int,
        default=160,
        help="frames of the default SyntheticAV video: where segments are closer than their "
        "flow stacks are long (33 frames), neighbouring segments share frame pairs",
    )
    parser.add_argument(
        "--fps",
        type=float,
        default=12.5,
        help="frame rate of the default SyntheticAV video (12.5, SyntheticAV's own; real "
        "datasets are 25-30 fps: --frames 320 --fps 25 is the same 12.8 s)",
    )
    parser.add_argument("--methods", nargs="+", default=["tvl1", "dis"])
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--pairs", nargs="+", default=["rgb_audio", "rgb_flow"], choices=("rgb_audio", "rgb_flow")
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="passes per rgb_audio row (the mean is shown)"
    )
    parser.add_argument(
        "--flow-repeats",
        type=int,
        default=2,
        help="passes per flow row (TV-L1 takes minutes); two make RGB 45 %% exact",
    )
    parser.add_argument(
        "--precision",
        nargs="+",
        default=["fp32"],
        choices=("fp32", "bf16", "fp16"),
        help="rgb_audio rows for each precision (flow rows: the first)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(args.video) if args.video else write_720p(Path(tmp), args.frames, args.fps)
        # one untimed decode, so that the first row does not pay for a cold file cache
        reader = decode_module.VideoReader(video)
        reader.read_all()
        if reader.has_audio:
            reader.get_audio()
        print(
            f"# end_to_end: {cpu_model()}, {torch.get_num_threads()} threads, torch "
            f"{torch.__version__}, {video.name} ({reader.num_frames} frames at "
            f"{reader.fps:g} fps, {reader.duration:.1f} s), S={args.segments}"
        )
        print(
            "| model | precision | flow method | selection % | total (s) | "
            + " | ".join(PARTS)
            + " | time vs fusion |"
        )
        print("|" + "---|" * (len(PARTS) + 6))
        pairs = [p for p in PAIRS if p[0].split("_", 1)[1] in args.pairs]
        for method in args.methods:
            for fusion, adaptive in pairs:
                flows = "flow" in fusion
                if not flows and method != args.methods[0]:
                    continue  # no flow: one method is enough
                for precision in args.precision[:1] if flows else args.precision:
                    repeats = args.flow_repeats if flows else args.repeats
                    models = {
                        n: prepare(n, args.segments, repeats, precision) for n in (fusion, adaptive)
                    }
                    passes: dict[str, list[tuple[float, dict[str, float]]]] = {
                        n: [] for n in models
                    }
                    for i in range(repeats):
                        for n, (model, ds) in models.items():  # in turn: drift hits both
                            passes[n].append(run(model, ds[i], video, method, args.segments))
                    base = None
                    for n, (model, ds) in models.items():
                        total, parts = mean_pass(passes[n])
                        base = total if base is None else base
                        d = torch.cat(ds)
                        rates = {
                            m: 100.0 * float(d[..., k].mean())
                            for k, m in enumerate(model.modalities)
                        }
                        sel = ", ".join(f"{m} {r:.0f}" for m, r in rates.items())
                        print(
                            f"| {n} | {precision} | {method if flows else '-'} | {sel} | "
                            f"{total:.2f} | "
                            + " | ".join(f"{parts[p]:.2f}" for p in PARTS)
                            + f" | {total / base:.3f} |",
                            flush=True,
                        )


if __name__ == "__main__":
    main()
