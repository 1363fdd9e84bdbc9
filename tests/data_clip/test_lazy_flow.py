"""``load_video_inputs(path, model)``: flow on demand, computed only for the segments selected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import adamml
from adamml.data import OnDemandFlow, extract_flow, load_video_inputs
from adamml.data.flowclip import _PAIRS_PER_CALL, flow_pairs

SEGMENTS = 4


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    from adamml.data.synthetic import write_synthetic_av

    out = tmp_path_factory.mktemp("lazy")
    write_synthetic_av(out, 1, num_val=1, seed=5, frames=64)
    return out / "videos" / "train" / "00000.mp4"


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Flow pairs passed to the flow function, per call."""
    import adamml.data.flowclip as flowclip

    calls: list[int] = []
    real = flowclip.optical_flow_batch

    def counting(prev, nxt, **kw):  # noqa: ANN001, ANN003, ANN202
        calls.append(len(prev))
        return real(prev, nxt, **kw)

    monkeypatch.setattr(flowclip, "optical_flow_batch", counting)
    return calls


def _forced(model: adamml.AdaMML, flow_segments: list[int]) -> torch.Tensor:
    d = torch.ones(1, SEGMENTS, len(model.modalities))
    d[..., model.modalities.index("flow")] = 0
    d[0, flow_segments, model.modalities.index("flow")] = 1
    return d


def _pairs(src: OnDemandFlow) -> np.ndarray:
    req = src.requests[0]
    return flow_pairs(req.indices, req.consecutive, req.num_frames)


def test_flow_is_computed_only_for_the_selected_segments(video: Path, counted: list[int]) -> None:
    model = adamml.create_model("test_adamml_rgb_flow_rgbdiff", num_classes=6).eval()
    x = load_video_inputs(video, model, segments=SEGMENTS, flow_method="dis")
    src = x["flow"]
    assert isinstance(src, OnDemandFlow) and src.shape == (1, SEGMENTS, 4, 10, 32, 32)
    assert src.pairs_computed == 0 and not counted  # nothing before the model decides
    selected = [1, 3]
    with torch.no_grad():
        out = model(x, decisions=_forced(model, selected))
    need = len(np.unique(_pairs(src)[selected]))
    assert src.pairs_computed == sum(counted) == need
    assert need < len(np.unique(_pairs(src)))  # not every segment
    # the OpenCV methods get the pairs a few at a time (RAFT: all in one batched call)
    assert max(counted) <= _PAIRS_PER_CALL and len(counted) == -(-need // _PAIRS_PER_CALL)
    eager = load_video_inputs(
        video, model, segments=SEGMENTS, flow_method="dis", flow_on_demand=False
    )
    assert isinstance(eager["flow"], torch.Tensor)
    torch.testing.assert_close(
        src.gather([0, 0], selected), eager["flow"][0, selected], rtol=0, atol=0
    )
    with torch.no_grad():
        ref = model(eager, decisions=_forced(model, selected))
    torch.testing.assert_close(out.logits, ref.logits, rtol=0, atol=0)


def test_nothing_selected_computes_no_flow(video: Path) -> None:
    model = adamml.create_model("test_adamml_rgb_flow_rgbdiff", num_classes=6).eval()
    x = load_video_inputs(video, model, segments=SEGMENTS, flow_method="dis")
    with torch.no_grad():
        model(x, decisions=_forced(model, []))
    assert x["flow"].pairs_computed == 0


def test_policy_that_looks_at_flow_computes_only_its_view_elsewhere(video: Path) -> None:
    model = adamml.create_model("test_adamml_rgb_flow", num_classes=6).eval()
    x = load_video_inputs(video, model, segments=SEGMENTS, flow_method="dis")
    src = x["flow"]
    selected = [2]
    with torch.no_grad():
        out = model(x, decisions=_forced(model, selected))
    stride = model.specs["flow"].policy_frame_stride
    pairs = _pairs(src)
    need = np.union1d(pairs[:, ::stride], pairs[selected])
    assert src.pairs_computed == len(need) < len(np.unique(pairs))
    eager = load_video_inputs(
        video, model, segments=SEGMENTS, flow_method="dis", flow_on_demand=False
    )
    with torch.no_grad():
        ref = model(eager, decisions=_forced(model, selected))
    torch.testing.assert_close(out.logits, ref.logits, rtol=0, atol=0)
    torch.testing.assert_close(out.policy_logits, ref.policy_logits, rtol=0, atol=0)


def test_a_plain_input_spec_stays_eager_unless_asked(video: Path) -> None:
    spec = adamml.create_model("test_adamml_rgb_flow_rgbdiff", num_classes=6).input_spec
    assert isinstance(
        load_video_inputs(video, spec, segments=2, flow_method="dis")["flow"], torch.Tensor
    )
    lazy = load_video_inputs(video, spec, segments=2, flow_on_demand=True)["flow"]
    assert isinstance(lazy, OnDemandFlow) and lazy.pairs_computed == 0


def test_fusion_runs_every_segment_from_the_source(video: Path) -> None:
    model = adamml.create_model("test_fusion_rgb_flow", num_classes=6).eval()
    x = load_video_inputs(video, model, segments=SEGMENTS, flow_method="dis")
    with torch.no_grad():
        out = model(x)
    assert out.decisions.shape == (1, SEGMENTS, 2) and bool(out.decisions.all())
    assert x["flow"].pairs_computed == len(np.unique(_pairs(x["flow"])))


def test_stored_flow_is_read_not_computed(
    video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = video.parents[2]
    res = extract_flow([video], tmp_path / "flow", root=root, method="dis", progress=False)
    assert len(res.written) == 1 and not res.failed
    model = adamml.create_model("test_adamml_rgb_flow_rgbdiff", num_classes=6).eval()
    computed = load_video_inputs(
        video, model, segments=SEGMENTS, flow_method="dis", flow_on_demand=False
    )["flow"]

    def boom(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("flow was computed although it is stored")

    for name in (
        "adamml.data.flow.optical_flow",
        "adamml.data.flow.optical_flow_batch",
        "adamml.data.flowclip.optical_flow_batch",
        "adamml.data.flowclip.compute_fields",
    ):
        monkeypatch.setattr(name, boom)
    stored = load_video_inputs(video, model, segments=SEGMENTS, flow_dir=tmp_path / "flow")
    assert isinstance(stored["flow"], torch.Tensor)
    # within the quantisation step: half of 40/255 px, normalised by 40 * 0.226
    assert (stored["flow"] - computed).abs().max() <= 20 / 255 / (40 * 0.226) + 1e-5
    with torch.no_grad():
        assert model(stored).logits.shape == (1, 6)


def test_missing_stored_flow_names_the_file(video: Path, tmp_path: Path) -> None:
    from adamml.data import MediaFileError

    model = adamml.create_model("test_adamml_rgb_flow_rgbdiff", num_classes=6)
    with pytest.raises(MediaFileError, match="00000.mp4.*extract flow"):
        load_video_inputs(video, model, flow_dir=tmp_path)


def test_sources_follow_to_device() -> None:
    from adamml.data.flowclip import FlowRequest
    from adamml.data.spatial import EVAL_SPATIAL
    from adamml.engine.evaluate import to_device

    req = FlowRequest(
        lambda idx: np.zeros((len(idx), 8, 8, 3), np.uint8),
        20,
        np.zeros((2, 1), np.int64),
        5,
        (8, 8),
        EVAL_SPATIAL,
        method="dis",
    )
    src = OnDemandFlow([req], device="meta")
    moved = to_device({"flow": src, "rgb": torch.zeros(1)}, torch.device("cpu"))
    assert moved["flow"] is src and src.device == torch.device("cpu")
    assert src.gather([0], [1]).device == torch.device("cpu")


def test_the_file_is_decoded_once_and_flow_reads_the_kept_frames(
    video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adamml.data import PrefetchedFrames, VideoReader

    passes: list[dict] = []
    real = VideoReader.get_frames_at

    def counting(self, requests, **kw):  # noqa: ANN001, ANN003, ANN202
        passes.append({k: len(v) for k, v in requests.items()})
        return real(self, requests, **kw)

    monkeypatch.setattr(VideoReader, "get_frames_at", counting)
    model = adamml.create_model("test_adamml_rgb_flow_rgbdiff", num_classes=6).eval()
    x = load_video_inputs(video, model, segments=SEGMENTS, flow_method="dis")
    getter = x["flow"].requests[0].get_frames
    assert isinstance(getter, PrefetchedFrames) and getter.decodes == 1 and len(passes) == 1
    assert 256 in passes[0] and len(passes[0]) == 2  # the policy view's side and flow's
    with torch.no_grad():
        out = model(x, decisions=_forced(model, [0, 2, 3]))
    assert x["flow"].pairs_computed > 0 and len(passes) == 1 and getter.decodes == 1
    # the same inputs, logits and flow as a decode per request
    monkeypatch.setattr(VideoReader, "get_frames_at", real)
    monkeypatch.setattr(
        "adamml.data.prefetch.PrefetchedFrames", lambda media, later: media.get_frames
    )
    ref_x = load_video_inputs(video, model, segments=SEGMENTS, flow_method="dis")
    assert not isinstance(ref_x["flow"].requests[0].get_frames, PrefetchedFrames)
    with torch.no_grad():
        ref = model(ref_x, decisions=_forced(model, [0, 2, 3]))
    torch.testing.assert_close(out.logits, ref.logits, rtol=0, atol=0)
    torch.testing.assert_close(
        x["flow"].gather([0, 0, 0], [0, 2, 3]),
        ref_x["flow"].gather([0, 0, 0], [0, 2, 3]),
        rtol=0,
        atol=0,
    )


class _Frames:
    """A fake reader: frame i is filled with i (side ``short`` sets the height)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def _make(self, ix, short):  # noqa: ANN001, ANN202
        h = short or 4
        return np.stack([np.full((h, 2, 3), i, np.uint8) for i in ix]).reshape(-1, h, 2, 3)

    def get_frames_at(self, requests):  # noqa: ANN001, ANN202
        self.calls.append({k: list(v) for k, v in requests.items()})
        return {k: self._make(v, k) for k, v in requests.items()}

    def get_frames(self, ix, *, short=None):  # noqa: ANN001, ANN202
        return self.get_frames_at({short: ix})[short]


def test_prefetched_frames_keep_the_later_frames_from_the_first_decode() -> None:
    from adamml.data import PrefetchedFrames

    reader = _Frames()
    frames = PrefetchedFrames(reader, {8: [5, 3, 4]})
    first = frames([0, 9, 0], short=6)  # decodes the asked frames and the later ones at once
    assert first.shape == (3, 6, 2, 3) and first[:, 0, 0, 0].tolist() == [0, 9, 0]
    assert reader.calls == [{8: [3, 4, 5], 6: [0, 9, 0]}]
    later = frames([4, 4, 3], short=8)  # kept: no decode
    assert later.shape == (3, 8, 2, 3) and later[:, 0, 0, 0].tolist() == [4, 4, 3]
    assert frames.decodes == 1 and len(reader.calls) == 1
    frames([3, 7], short=8)  # not all kept: decoded as usual
    assert frames.decodes == 2 and reader.calls[-1] == {8: [3, 7]}
    # asked first at the kept side itself: one array holds both
    reader = _Frames()
    frames = PrefetchedFrames(reader, {8: [2, 3]})
    assert frames([3, 1], short=8)[:, 0, 0, 0].tolist() == [3, 1]
    assert reader.calls == [{8: [1, 2, 3]}]
    assert frames([2], short=8)[:, 0, 0, 0].tolist() == [2] and frames.decodes == 1


def test_frames_beyond_the_memory_cap_are_decoded_again(
    video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from adamml.data import PrefetchedFrames
    from adamml.data import prefetch as prefetch_module

    gc.collect()
    base = prefetch_module.kept_bytes()
    model = adamml.create_model("test_adamml_rgb_flow_rgbdiff", num_classes=6).eval()
    x = load_video_inputs(video, model, segments=SEGMENTS, flow_method="dis")
    kept = x["flow"].requests[0].get_frames
    assert isinstance(kept, PrefetchedFrames)
    one = prefetch_module.kept_bytes() - base
    assert one > 0
    # the cap counts every clip alive in the process: room for one clip's frames, not two
    monkeypatch.setattr(prefetch_module, "PREFETCH_MAX_BYTES", base + one + one // 2)
    y = load_video_inputs(video, model, segments=SEGMENTS, flow_method="dis")
    assert not isinstance(y["flow"].requests[0].get_frames, PrefetchedFrames)
    torch.testing.assert_close(y["flow"].gather([0], [1]), x["flow"].gather([0], [1]))
    del x, kept
    gc.collect()
    assert prefetch_module.kept_bytes() == base  # released with the inputs
    z = load_video_inputs(video, model, segments=SEGMENTS, flow_method="dis")
    assert isinstance(z["flow"].requests[0].get_frames, PrefetchedFrames)
