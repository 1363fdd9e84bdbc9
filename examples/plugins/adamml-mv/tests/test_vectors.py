"""Motion vectors: rasterisation on hand-made vectors, reading real H.264 files."""

from __future__ import annotations

import numpy as np
import pytest
from adamml.data.errors import DataError

from adamml_mv._references import h264_is_reference
from adamml_mv.vectors import (
    NoMotionVectorsError,
    has_motion_vectors,
    motion_vector_array,
    rasterise_motion_vectors,
    read_motion_vectors,
    resize_field,
)
from conftest import DX, DY, FRAMES, HEIGHT, SQUARE, WIDTH, picture_types, square_position

# The square's mean displacement over its inner 16x16 (away from blocks it only partly covers)
# must be within TOL pixels of (DX, DY) per inter frame. Measured with FFmpeg 8.1 / x264
# veryfast: every inter frame exactly (3.0, 1.0) for bf=0 and, with per_frame, for bf=2.
TOL = 0.5


def _vec(source, w, h, dx, dy, cx, cy, scale=4):
    """A vector whose block (centre cx, cy) moved by (dx, dy) pixels (source -1: from the past)."""
    # motion = (src - dst) * scale; the forward displacement is source * motion / scale
    mx, my = int(source * dx * scale), int(source * dy * scale)
    return (source, w, h, cx + mx // scale, cy + my // scale, cx, cy, mx, my, scale)


def _square_mean(field: np.ndarray, i: int) -> np.ndarray:
    y, x = square_position(i)
    m = SQUARE // 4
    return field[y + m : y + SQUARE - m, x + m : x + SQUARE - m].reshape(-1, 2).mean(0)


# -- rasterisation --------------------------------------------------------------------------------
def test_a_past_vector_fills_its_block_with_dst_minus_src() -> None:
    v = motion_vector_array([(-1, 16, 8, 5, 10, 8, 12, 0, 0, 4)])  # block x 0..16, y 8..16
    f = rasterise_motion_vectors(v, 24, 32)
    assert f.shape == (24, 32, 2) and f.dtype == np.float32
    np.testing.assert_array_equal(f[8:16, 0:16], np.broadcast_to([3.0, 2.0], (8, 16, 2)))
    f[8:16, 0:16] = 0
    assert not f.any()


def test_quarter_pel_motion_is_kept() -> None:
    v = motion_vector_array([(-1, 8, 8, 0, 0, 4, 4, -5, 3, 4)])  # src from motion, truncated
    np.testing.assert_allclose(rasterise_motion_vectors(v, 8, 8)[0, 0], [1.25, -0.75])


def test_future_only_blocks_are_negated_and_past_wins_where_both() -> None:
    v = motion_vector_array(
        [
            _vec(1, 16, 16, 2.0, 1.0, 8, 8),  # only a future vector: the same forward motion
            _vec(1, 16, 16, 9.0, 9.0, 24, 8),  # both: the past one is used
            _vec(-1, 16, 16, 2.0, -1.0, 24, 8),
        ]
    )
    rec = v[0]
    assert rec["src_x"] - rec["dst_x"] == 2  # future: the content goes to src
    f = rasterise_motion_vectors(v, 16, 32)
    np.testing.assert_array_equal(f[:, :16], np.broadcast_to([2.0, 1.0], (16, 16, 2)))
    np.testing.assert_array_equal(f[:, 16:], np.broadcast_to([2.0, -1.0], (16, 16, 2)))


def test_blocks_are_clipped_to_the_frame_and_distances_divide() -> None:
    v = motion_vector_array([_vec(-1, 16, 16, 6.0, 3.0, 8, 8), _vec(1, 16, 16, 4.0, 2.0, 24, 8)])
    f = rasterise_motion_vectors(v, 10, 20, distances=(3, 2))  # frame smaller than the blocks
    np.testing.assert_array_equal(f[:, :16], np.broadcast_to([2.0, 1.0], (10, 16, 2)))
    np.testing.assert_array_equal(f[:, 16:], np.broadcast_to([2.0, 1.0], (10, 4, 2)))
    assert not rasterise_motion_vectors(v[:0], 4, 4).any()


def test_the_vectorised_painter_equals_a_loop_over_blocks(videos) -> None:
    import av

    def painted_one_by_one(v: np.ndarray, height: int, width: int) -> np.ndarray:
        out = np.zeros((height, width, 2), np.float32)
        for r in sorted(v, key=lambda r: -r["source"]):  # future first, past over it
            x0, y0 = max(r["dst_x"] - r["w"] // 2, 0), max(r["dst_y"] - r["h"] // 2, 0)
            x1, y1 = r["dst_x"] + r["w"] - r["w"] // 2, r["dst_y"] + r["h"] - r["h"] // 2
            motion = np.array([r["motion_x"], r["motion_y"]], np.float64) / r["motion_scale"]
            out[y0:y1, x0:x1] = r["source"] * motion
        return out

    checked = 0
    with av.open(str(videos["b"])) as c:
        stream = c.streams.video[0]
        stream.codec_context.options = {"flags2": "+export_mvs"}
        for frame in c.decode(stream):
            side = frame.side_data.get("MOTION_VECTORS")
            if side is not None:
                v = side.to_ndarray()
                np.testing.assert_array_equal(
                    rasterise_motion_vectors(v, HEIGHT, WIDTH), painted_one_by_one(v, HEIGHT, WIDTH)
                )
                checked += 1
    assert checked > 20


def test_area_resize_averages_and_scales_displacements() -> None:
    field = np.zeros((16, 32, 2), np.float32)
    field[:8, :16] = (4.0, 2.0)  # one quarter of the frame moves
    small = resize_field(field, (4, 4))  # x / 8, y / 4
    np.testing.assert_allclose(small[0, 0], [0.5, 0.5])
    np.testing.assert_allclose(small[3, 3], [0.0, 0.0])
    # the mean displacement in output pixels is the input's, scaled by the factor
    np.testing.assert_allclose(small.mean((0, 1)), field.mean((0, 1)) * [4 / 32, 4 / 16])


def test_h264_reference_flag_from_nal_headers() -> None:
    ref_slice, b_slice, sei = b"\x41\x9a", b"\x01\x9e", b"\x06\x05"
    avcc = lambda *nals: b"".join(len(n).to_bytes(4, "big") + n for n in nals)
    annexb = lambda *nals: b"".join(b"\x00\x00\x00\x01" + n for n in nals)
    assert h264_is_reference(avcc(sei, ref_slice), 4) is True
    assert h264_is_reference(avcc(b_slice), 4) is False
    assert h264_is_reference(annexb(sei, b_slice), None) is False
    assert h264_is_reference(avcc(sei), 4) is None


# -- real files -----------------------------------------------------------------------------------
def test_p_frames_give_the_square_motion_and_i_frames_zeros(videos) -> None:
    types = picture_types(videos["p"])
    assert types.count("I") >= 2 and "B" not in types
    fields = read_motion_vectors(videos["p"], range(FRAMES), size=None)
    assert fields.shape == (FRAMES, HEIGHT, WIDTH, 2)
    for i, t in enumerate(types):
        if t == "I":
            assert not fields[i].any()
        else:
            np.testing.assert_allclose(_square_mean(fields[i], i), [DX, DY], atol=TOL)
    # the static background does not move
    assert np.abs(fields[:, :, WIDTH - 16 :]).max() <= 1.0


def test_b_frames_per_frame_and_as_coded(videos) -> None:
    types = picture_types(videos["b"])
    assert "B" in types
    per_frame = read_motion_vectors(videos["b"], range(FRAMES), size=None)
    coded = read_motion_vectors(videos["b"], range(FRAMES), size=None, per_frame=False)
    inter = [i for i, t in enumerate(types) if t != "I"]
    means = np.stack([_square_mean(per_frame[i], i) for i in inter])
    np.testing.assert_allclose(means, np.broadcast_to([DX, DY], means.shape), atol=TOL)
    # as coded, a P-frame after two B-frames points three frames back
    ratios = [_square_mean(coded[i], i)[0] / DX for i in inter]
    assert max(ratios) == pytest.approx(3, abs=TOL)
    for i, t in enumerate(types):
        if t == "I":
            assert not per_frame[i].any()


def test_resized_fields_scale_the_motion(videos) -> None:
    size = (HEIGHT // 2, WIDTH // 4)
    full = read_motion_vectors(videos["p"], [5], size=None)[0]
    small = read_motion_vectors(videos["p"], [5], size=size)[0]
    assert small.shape == (*size, 2)
    np.testing.assert_allclose(
        small.mean((0, 1)), full.mean((0, 1)) * [1 / 4, 1 / 2], rtol=1e-5, atol=1e-6
    )


def test_indices_in_any_order_duplicates_and_past_the_end(videos) -> None:
    every = read_motion_vectors(videos["p"], range(FRAMES), size=(32, 48))
    got = read_motion_vectors(videos["p"], [7, 2, 7, FRAMES + 5, 0], size=(32, 48))
    np.testing.assert_array_equal(got, every[[7, 2, 7, FRAMES - 1, 0]])
    assert read_motion_vectors(videos["p"], [], size=(32, 48)).shape == (0, 32, 48, 2)
    with pytest.raises(ValueError, match="must be >= 0"):
        read_motion_vectors(videos["p"], [-1])


def test_an_all_intra_file_is_detected(videos) -> None:
    assert set(picture_types(videos["intra"])) == {"I"}
    assert has_motion_vectors(videos["p"]) and has_motion_vectors(videos["b"])
    assert not has_motion_vectors(videos["intra"])
    with pytest.raises(NoMotionVectorsError, match=r"intra\.mp4.*intra-coded") as err:
        read_motion_vectors(videos["intra"], [0, 3])
    assert isinstance(err.value, DataError)
    # an I-frame alone of a normal file is not an all-intra file: frame 0 reads as zeros
    assert not read_motion_vectors(videos["p"], [0]).any()
