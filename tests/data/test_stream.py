"""`SegmentReader`: one forward decode, each segment as soon as its frames arrived, equal to
what `load_video_inputs` (or random access) makes of the same frames."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

import adamml
from adamml.data import SegmentReader, VideoReader, load_video_inputs, stream_video_inputs
from adamml.data.clip import batch_of_one
from adamml.data.errors import MediaFileError, VideoDecodeError


class Pipe:
    """A non-seekable byte stream (only ``read``) that counts what was read."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        n = len(self.data) - self.pos if n < 0 else n
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    from adamml.data.synthetic import write_synthetic_av

    root = tmp_path_factory.mktemp("stream")
    write_synthetic_av(root, 1, num_val=1, seed=0)
    return sorted(root.glob("videos/val/*.mp4"))[0]


@pytest.fixture(scope="module")
def transport_stream(video: Path) -> Path:
    """The same video remuxed (not re-encoded) to MPEG-TS, which a pipe can carry."""
    dst = video.with_suffix(".ts")
    with av.open(str(video)) as src, av.open(str(dst), "w", format="mpegts") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return dst


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """RGB, audio, on-demand flow and the RGB-difference policy view (flow by DIS in these
    tests: TV-L1 at 256 pixels takes seconds a pair)."""
    return adamml.create_model("test_adamml_rgb_audio_flow_rgbdiff", num_classes=6).eval()


def _same(got: dict, want: dict, s: int) -> None:
    for m, x in got.items():
        if isinstance(x, torch.Tensor):
            assert torch.equal(x[:, 0], want[m][:, s]), (m, s)
        else:  # on-demand flow: computed now, from the frames kept with the segment
            one = torch.tensor([0])
            assert torch.equal(x.gather(one, one), want[m].gather(one, torch.tensor([s]))), m


def test_segments_of_a_file_equal_load_video_inputs(video: Path, model) -> None:
    full = load_video_inputs(video, model, segments=4, flow_method="dis")
    segments = list(stream_video_inputs(video, model, segments=4, flow_method="dis"))
    assert [seg.index for seg in segments] == [0, 1, 2, 3]
    assert type(segments[0].inputs["flow"]).__name__ == "OnDemandFlow"
    for seg in segments:
        _same(seg.inputs, full, seg.index)
    firsts = [seg.frames[0] for seg in segments]
    assert firsts == sorted(firsts) and segments[-1].frames[1] <= VideoReader(video).num_frames


def test_a_pipe_is_read_forward_in_fixed_windows(video: Path, transport_stream: Path, model):
    """No frame count in an MPEG-TS pipe: windows of ``segment_frames``; each segment comes
    before the stream has been read to its end and equals the same window made by random
    access to the file."""
    reader = SegmentReader(Pipe(transport_stream.read_bytes()), model)
    assert not reader.info.frames_known
    assert (reader.segment_frames, reader.num_segments) == (64, None)
    pipe = Pipe(transport_stream.read_bytes())
    reader = SegmentReader(pipe, model, segment_frames=40, flow_method="dis")
    random_access = VideoReader(transport_stream)
    audio = random_access.get_audio()
    read_at_yield = []
    for seg in reader:
        read_at_yield.append(pipe.pos)
        want = reader.transform.produce(
            reader.indices(seg.index),
            random_access.get_frames,
            (seg.index + 1) * 40,
            random_access.fps,
            audio,
            np.random.default_rng(0),
        )
        _same(seg.inputs, batch_of_one(want, reader.views, torch.device("cpu")), 0)
        assert seg.frames[0] >= 40 * seg.index and seg.frames[1] < 40 * (seg.index + 1)
    assert len(read_at_yield) == VideoReader(video).num_frames // 40
    assert read_at_yield[0] < len(pipe.data) / 2  # the first segment came early


def test_a_video_shorter_than_one_window_gives_one_segment(transport_stream: Path, model) -> None:
    segments = list(SegmentReader(Pipe(transport_stream.read_bytes()), model, segment_frames=500))
    assert [seg.index for seg in segments] == [0]


def test_unreadable_sources_are_named(video: Path, tmp_path: Path, model) -> None:
    with pytest.raises(VideoDecodeError, match="without seeking"):
        list(SegmentReader(Pipe(video.read_bytes()), model))  # a plain mp4's index is at its end
    with pytest.raises(MediaFileError, match="not a folder"):
        list(stream_video_inputs(tmp_path, model))
    with pytest.raises(MediaFileError, match="no such file"):
        SegmentReader(tmp_path / "missing.mp4", model)
