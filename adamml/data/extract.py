"""Offline extraction: optical flow (and frames/audio as the reference stores them).

TV-L1 on the 256-short-side frames costs ~0.4 s per pair on one core (dependency notes §3), about
2 minutes per 10 s video, so flow for a dataset is a batch job: parallel over videos
(``workers`` processes), resumable (finished files are skipped; each file is written to a
temporary name and renamed), with a tqdm progress bar.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypedDict, Unpack

import av
import cv2
import numpy as np
from tqdm import tqdm

from .decode import AUDIO_RATE, VideoReader
from .errors import DataError
from .flow import (
    FLOW_BOUND,
    FLOW_SIZE,
    FlowMethod,
    check_flow_method,
    optical_flow_batch,
    quantise_flow,
)
from .flowstore import flow_file, write_flow_file

__all__ = ["ExtractResult", "ExtractRun", "extract_flow", "extract_frames", "extract_audio"]


@dataclass
class ExtractResult:
    """What an extraction run did: written, skipped (already done) and failed videos."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class ExtractRun(TypedDict, total=False):
    """How an extraction runs: the keyword arguments every ``extract_*`` function takes.

    Attributes:
        root: the dataset root (the manifest's folder); outputs are named by the videos' paths
            relative to it (default: by their file names).
        workers: processes (default 1: this process).
        progress: show a tqdm bar (default True).
    """

    root: str | os.PathLike[str] | None
    workers: int
    progress: bool


def _output(out_dir: str | os.PathLike[str], suffix: str, rel: str) -> Path:
    """``out_dir/<rel>`` with the video's suffix replaced by ``suffix`` ("" for a folder)."""
    return Path(out_dir) / Path(rel).with_suffix(suffix)


def _rel(video: Path, root: Path | None) -> str:
    return os.path.relpath(video, root) if root else video.name


def _plan(
    videos: Sequence[str | os.PathLike[str]],
    root: str | os.PathLike[str] | None,
    out_path: Callable[[str], Path],
    done: Callable[[Path], bool],
) -> tuple[ExtractResult, list[tuple[Path, Path]]]:
    """The ``(video, output)`` jobs still to do; outputs already ``done`` are listed as skipped
    (what makes a run resumable). ``out_path`` maps a video's name relative to ``root``."""
    base = Path(root) if root else None
    result, jobs = ExtractResult(), []
    for v in map(Path, videos):
        out = out_path(_rel(v, base))
        (result.skipped.append(out) if done(out) else jobs.append((v, out)))
    return result, jobs


_CHUNK = 64  # frame pairs per optical_flow_batch call (one batched call for raft_small)


def _flow_one(
    job: tuple[Path, Path], method: FlowMethod, reduced: bool, flow_size: int, device: str = "cpu"
) -> None:
    video, out = job
    frames = VideoReader(video).read_all(short=flow_size)  # never the full-size frames
    if method != "raft_small":  # the OpenCV methods work on grey frames: convert once
        frames = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    pairs = []
    for i in range(0, len(frames) - 1, _CHUNK):  # quantise as we go: float flow is 8x
        j = min(i + _CHUNK, len(frames) - 1)
        pairs += list(
            quantise_flow(
                optical_flow_batch(
                    frames[i:j],
                    frames[i + 1 : j + 1],
                    method=method,
                    reduced=reduced,
                    device=device,
                )
            )
        )
    if not pairs:  # one-frame video: one zero field so readers find something
        pairs = [quantise_flow(np.zeros((*frames.shape[1:3], 2), np.float32))]
    write_flow_file(out, pairs, FLOW_BOUND)


def _attempt(
    worker: Callable[[tuple[Path, Path]], None], job: tuple[Path, Path]
) -> tuple[str, str]:
    """Run one job: ``(video, "")`` when it is written, ``(video, message)`` when the video is
    bad, so that one bad video does not stop the run."""
    try:
        worker(job)
        return str(job[0]), ""
    except DataError as e:
        return str(job[0]), str(e)


def _run(
    jobs: list[tuple[Path, Path]],
    worker: Callable[[tuple[Path, Path]], None],
    workers: int,
    desc: str,
    result: ExtractResult,
    progress: bool,
) -> ExtractResult:
    out_of = {str(v): o for v, o in jobs}
    attempt = partial(_attempt, worker)
    if workers > 1 and len(jobs) > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            it: Iterable[tuple[str, str]] = pool.imap_unordered(attempt, jobs)
            results = list(tqdm(it, total=len(jobs), desc=desc, disable=not progress))
    else:
        results = [attempt(j) for j in tqdm(jobs, desc=desc, disable=not progress)]
    for video, err in results:
        if err:
            result.failed[video] = err
        else:
            result.written.append(out_of[video])
    return result


def _extract(
    videos: Sequence[str | os.PathLike[str]],
    out_path: Callable[[str], Path],
    done: Callable[[Path], bool],
    worker: Callable[[tuple[Path, Path]], None],
    desc: str,
    *,
    prepare: Callable[[], None] | None = None,
    root: str | os.PathLike[str] | None = None,
    workers: int = 1,
    progress: bool = True,
) -> ExtractResult:
    """What every ``extract_*`` does: skip the outputs already ``done``, call ``prepare`` once
    if there is work left, then run ``worker`` on each ``(video, output)`` job."""
    result, jobs = _plan(videos, root, out_path, done)
    if jobs and prepare is not None:
        prepare()
    return _run(jobs, worker, workers, desc, result, progress)


def extract_flow(
    videos: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    method: FlowMethod = "tvl1",
    reduced: bool = False,
    flow_size: int = FLOW_SIZE,
    device: str = "cpu",
    **run: Unpack[ExtractRun],
) -> ExtractResult:
    """Compute and store quantised optical flow for every video (see `flowstore`).

    Args:
        videos: video files.
        out_dir: output folder; each video's flow goes to
            [`flow_file(out_dir, rel)`][adamml.data.flowstore.flow_file], ``rel`` relative to
            ``root`` (the manifest's folder) or the file name.
        method: flow algorithm (see `optical_flow`); ``raft_small`` runs batched.
        reduced: reduced TV-L1 settings.
        flow_size: shorter side of the frames flow is computed on (256, appendix B).
        device: where ``raft_small`` runs (e.g. ``"cuda"``; with ``workers > 1`` each process
            loads its own copy of the network).
        **run: ``root``, ``workers``, ``progress`` (see
            [`ExtractRun`][adamml.data.extract.ExtractRun]).

    Returns:
        [`ExtractResult`][adamml.data.extract.ExtractResult]; bad videos are listed in ``failed``
        and do not stop the run.
    """
    check_flow_method(method, "extract_flow method")

    def load_network() -> None:  # a missing download fails once, not once per video
        from .raft import load_raft_small

        load_raft_small(device=device)

    worker = partial(_flow_one, method=method, reduced=reduced, flow_size=flow_size, device=device)
    return _extract(
        videos,
        partial(flow_file, out_dir),
        Path.is_file,
        worker,
        "flow",
        prepare=load_network if method == "raft_small" else None,
        **run,
    )


def _frames_one(job: tuple[Path, Path], short_side: int) -> None:
    video, out = job
    frames = VideoReader(video).read_all(short=short_side)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames, start=1):
        cv2.imwrite(
            str(tmp / f"{i:05d}.jpg"),
            cv2.cvtColor(f, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, 95],
        )
    os.replace(tmp, out)


def extract_frames(
    videos: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    short_side: int = 256,
    **run: Unpack[ExtractRun],
) -> ExtractResult:
    """Write each video's frames as ``%05d.jpg`` (shorter side ``short_side``), one folder per
    video (``out_dir/<rel>``), as the reference's ``tools/extract_rgb.py`` does; ``run``:
    [`ExtractRun`][adamml.data.extract.ExtractRun]."""
    folder = partial(_output, out_dir, "")
    worker = partial(_frames_one, short_side=short_side)
    return _extract(videos, folder, Path.is_dir, worker, "frames", **run)


def _audio_one(job: tuple[Path, Path], sample_rate: int) -> None:
    video, out = job
    wave = VideoReader(video).get_audio(sample_rate)
    pcm = (np.clip(wave, -1, 1) * 32767).astype(np.int16)[None]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.wav")
    with av.open(str(tmp), "w", format="wav") as c:
        s = c.add_stream("pcm_s16le", rate=sample_rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = sample_rate
        for p in [*s.encode(frame), *s.encode()]:
            c.mux(p)
    os.replace(tmp, out)


def extract_audio(
    videos: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    sample_rate: int = AUDIO_RATE,
    **run: Unpack[ExtractRun],
) -> ExtractResult:
    """Write each video's audio as a mono 16-bit WAV at ``sample_rate`` (``out_dir/<rel>.wav``),
    as the reference's ``ffmpeg -ac 1 -ar 24000`` does; ``run``:
    [`ExtractRun`][adamml.data.extract.ExtractRun]. Videos without audio are ``failed``."""
    wav = partial(_output, out_dir, ".wav")
    worker = partial(_audio_one, sample_rate=sample_rate)
    return _extract(videos, wav, Path.is_file, worker, "audio", **run)
