"""How far a frame's motion vectors reach: the distance to its past and future reference frames.

The side data does not say which frame a vector points into. We infer the reference the way
H.264's default lists (and x264's, which sorts by distance) put it first: the *nearest* frame in
presentation order, in that direction, that was decoded before the current one and is a
reference picture. Which pictures are references: H.264 says so in every slice's NAL header
(``nal_ref_idc``); for other codecs (MPEG-2/4 Part 2) every picture but a B-picture is one.

This is exact for single-reference encoders (x264 presets ``veryfast`` and faster use
``ref=1``); with several references (``medium``: 3) a block that picked an older one is
divided by too small a distance.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ReferenceTracker", "h264_is_reference"]

_SLICE_TYPES = (1, 5)  # non-IDR and IDR coded slices
_PICTURE_TYPE_B = 3  # AVPictureType: PyAV 18 gives frame.pict_type as this int
_WINDOW = 64  # packets looked back in decode order; references are never that far from a frame


def _nal_headers(data: bytes, length_size: int | None) -> list[int]:
    """First byte of every NAL unit of a packet (AVCC length-prefixed, or Annex B start codes)."""
    heads: list[int] = []
    if length_size:
        i = 0
        while i + length_size < len(data):
            n = int.from_bytes(data[i : i + length_size], "big")
            heads.append(data[i + length_size])
            i += length_size + n
        return heads
    i = data.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(data):
        heads.append(data[i + 3])
        i = data.find(b"\x00\x00\x01", i + 3)
    return heads


def h264_is_reference(data: bytes, length_size: int | None) -> bool | None:
    """Whether an H.264 access unit is a reference picture (a slice with ``nal_ref_idc > 0``).

    Args:
        data: the packet's bytes.
        length_size: NAL length-prefix bytes (AVCC, mp4/mkv), or ``None`` for Annex B (ts, raw).

    Returns:
        True or False, or ``None`` when the packet holds no slice.

    Example:
        >>> h264_is_reference(b"\\x00\\x00\\x00\\x02\\x41\\x9a", 4)  # nal_ref_idc 2, type 1
        True
    """
    for head in _nal_headers(data, length_size):
        if head & 0x1F in _SLICE_TYPES:
            return bool((head >> 5) & 0x3)
    return None


class ReferenceTracker:
    """Follows packets (decode order) and frames (presentation order) of one video stream and
    gives each frame the distance, in frames, to its past and future reference.

    Args:
        stream: the PyAV video stream (its codec and frame rate).
    """

    def __init__(self, stream: Any) -> None:
        ctx = stream.codec_context
        self.h264 = ctx.name == "h264"
        extradata = ctx.extradata or b""
        # avcC extradata starts with version 1; its 5th byte holds lengthSizeMinusOne
        self.length_size = (extradata[4] & 0x3) + 1 if extradata[:1] == b"\x01" else None
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        tb = stream.time_base
        self.frame_pts = float(1 / (rate * tb)) if rate and tb else 1.0
        self._decoded: list[tuple[int, bool | None]] = []  # (pts, is reference) in decode order
        self._position: dict[int, int] = {}
        self._b_frames: set[int] = set()

    def packet(self, packet: Any) -> None:
        """Record a packet about to be decoded."""
        if packet.pts is None or packet.size == 0:
            return
        ref = h264_is_reference(bytes(packet), self.length_size) if self.h264 else None
        self._position[int(packet.pts)] = len(self._decoded)
        self._decoded.append((int(packet.pts), ref))

    def frame(self, frame: Any) -> None:
        """Record a decoded frame (a B-picture is no reference outside H.264)."""
        if frame.pts is not None and int(frame.pict_type) == _PICTURE_TYPE_B:
            self._b_frames.add(int(frame.pts))

    def distances(self, frame: Any) -> tuple[float, float]:
        """``(past, future)`` frames from a recorded ``frame`` to its nearest references (1 when
        unknown)."""
        pts = frame.pts
        if pts is None or pts not in self._position:
            return 1.0, 1.0
        pos = self._position[pts]
        past = future = None
        for p, ref in self._decoded[max(0, pos - _WINDOW) : pos]:
            if ref is False or (ref is None and p in self._b_frames):
                continue
            if p < pts and (past is None or p > past):
                past = p
            if p > pts and (future is None or p < future):
                future = p
        return self._frames(pts, past), self._frames(future, pts)

    def _frames(self, later: int | None, earlier: int | None) -> float:
        if later is None or earlier is None:
            return 1.0
        return max(1.0, round((later - earlier) / self.frame_pts))
