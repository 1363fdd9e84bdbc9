"""What a SyntheticAV video looks and sounds like: the configuration and the class table.

AdaMML Figure 1: evidence for the class comes and goes per segment and per modality (the lawn
mower is seen and heard in segments 3 and 6, only heard in segment 4, irrelevant in 1 and 8).
`SyntheticConfig` sets how often each of the four cases happens; `class_table` says what the
evidence is for each class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ...errors import ConfigError

__all__ = [
    "SyntheticConfig",
    "ClassInfo",
    "class_table",
    "SHAPES",
    "CATEGORY_NAMES",
    "NEITHER",
    "RGB_ONLY",
    "AUDIO_ONLY",
    "BOTH",
]

SHAPES: tuple[str, ...] = ("disc", "square", "diamond", "cross", "triangle", "ring")
"""Sprite shapes; all are symmetric under a horizontal flip, so flip augmentation is safe."""

NEITHER, RGB_ONLY, AUDIO_ONLY, BOTH = 0, 1, 2, 3
CATEGORY_NAMES: tuple[str, ...] = ("neither", "rgb_only", "audio_only", "both")
"""Per-segment evidence category codes, in the order of the probabilities."""


class ClassInfo(NamedTuple):
    """The evidence of one class.

    Attributes:
        name: label written to ``classes.txt`` (``shape-motion-frequency``).
        shape: index into `SHAPES`.
        direction: +1 moves down, -1 moves up, 0 any vertical direction (not informative).
        frequency: Hz of the class tone's fundamental.
    """

    name: str
    shape: int
    direction: int
    frequency: float


@dataclass(frozen=True)
class SyntheticConfig:
    """Every knob of the synthetic generator (frozen; `SyntheticAV` builds one).

    Attributes:
        num_classes: K (2 ... 12).
        frames: N raw frames per video.
        fps: frames per second (the default 12.5 makes one evidence segment exactly 1.28 s, the
            audio window, and 16 frames, one clip of 4 frames at stride 4).
        size: frame height and width in pixels.
        sample_rate: audio rate (24 kHz, the paper's).
        evidence_segments: G, the equal time slices that independently carry evidence.
        p_rgb_only, p_audio_only, p_both, p_neither: per-segment evidence probabilities
            (sum to 1).
        motion_pairs: number of class pairs that share a shape and differ only by moving up or
            down (the last ``2 * motion_pairs`` classes).
        motion_blur: draw a fading trail behind moving sprites, so a single frame shows the
            direction; ``False`` leaves the direction to temporal models (flow, RGB difference).
        distractors: at most this many distractor sprites per segment (0 .. distractors).
        audio_distractor_rate: expected distractor sounds (bursts, fast sweeps) per segment.
        frame_noise: std of per-frame pixel noise (0-255 scale).
        audio_noise: std range of the background noise of a video's track.
    """

    num_classes: int = 6
    frames: int = 160
    fps: float = 12.5
    size: int = 64
    sample_rate: int = 24000
    evidence_segments: int = 10
    p_rgb_only: float = 0.2
    p_audio_only: float = 0.05
    p_both: float = 0.05
    p_neither: float = 0.7
    motion_pairs: int = 1
    motion_blur: bool = True
    distractors: int = 2
    audio_distractor_rate: float = 0.8
    frame_noise: float = 3.0
    audio_noise: tuple[float, float] = (0.01, 0.03)

    def __post_init__(self) -> None:
        probs = self.probabilities
        if any(p < 0 for p in probs) or abs(sum(probs) - 1.0) > 1e-6:
            raise ConfigError(
                f"SyntheticAV evidence probabilities (p_neither, p_rgb_only, p_audio_only, p_both)"
                f" = {probs} must be >= 0 and sum to 1"
            )
        if not 0 <= self.motion_pairs <= len(SHAPES):
            raise ConfigError(
                f"SyntheticAV motion_pairs must be in 0..{len(SHAPES)}; got {self.motion_pairs}"
            )
        max_k = len(SHAPES) + self.motion_pairs
        if not 2 <= self.num_classes <= max_k:
            raise ConfigError(
                f"SyntheticAV num_classes must be in 2..{max_k} with motion_pairs="
                f"{self.motion_pairs} ({len(SHAPES)} shapes); got {self.num_classes}"
            )
        if 2 * self.motion_pairs > self.num_classes:
            raise ConfigError(
                f"SyntheticAV motion_pairs={self.motion_pairs} needs num_classes >= "
                f"{2 * self.motion_pairs}; got {self.num_classes}"
            )
        if self.size < 16 or self.frames < 1 or self.fps <= 0 or self.evidence_segments < 1:
            raise ConfigError(
                f"SyntheticAV needs size >= 16, frames >= 1, fps > 0 and "
                f"evidence_segments >= 1; got size={self.size}, frames="
                f"{self.frames}, fps={self.fps}, "
                f"evidence_segments={self.evidence_segments}"
            )

    @property
    def probabilities(self) -> tuple[float, float, float, float]:
        """(p_neither, p_rgb_only, p_audio_only, p_both), indexed by the category codes."""
        return (self.p_neither, self.p_rgb_only, self.p_audio_only, self.p_both)

    @property
    def duration(self) -> float:
        """Seconds of video (and audio)."""
        return self.frames / self.fps

    @property
    def segment_seconds(self) -> float:
        """Length of one evidence segment in seconds."""
        return self.duration / self.evidence_segments


def class_table(num_classes: int, motion_pairs: int = 1) -> list[ClassInfo]:
    """The evidence of each class.

    The first ``K - 2 * motion_pairs`` classes each own a shape (moving up or down at random,
    so direction says nothing); the last ``2 * motion_pairs`` share a shape per pair and differ
    only by direction. Tones are spaced evenly between 600 Hz and 5.4 kHz (at least one
    32-bin pooled band apart for K <= 12, and below the AAC low-pass).

    Example:
        >>> ", ".join(c.name for c in class_table(4, motion_pairs=1))
        'disc-any-600hz, square-any-2200hz, diamond-up-3800hz, diamond-down-5400hz'
    """
    unique = num_classes - 2 * motion_pairs
    lo, hi = 600.0, 5400.0
    step = (hi - lo) / max(num_classes - 1, 1)
    out: list[ClassInfo] = []
    for c in range(num_classes):
        if c < unique:
            shape, direction = c, 0
        else:
            j = c - unique
            shape, direction = unique + j // 2, (-1 if j % 2 == 0 else 1)
        freq = lo + c * step
        motion = {0: "any", -1: "up", 1: "down"}[direction]
        out.append(ClassInfo(f"{SHAPES[shape]}-{motion}-{freq:.0f}hz", shape, direction, freq))
    return out
