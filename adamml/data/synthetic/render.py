"""Procedural frames and sound of one SyntheticAV video, drawn from a per-video plan.

Every random choice of a video is made once, in `make_plan`, from a generator seeded by
``(seed, split, index)``; rendering any subset of frames, or the audio track, is then a pure
function of the plan. So a video is the same whether it is rendered whole, frame by frame, or in
another process, and the in-memory tensors only render the frames a clip samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from .config import AUDIO_ONLY, BOTH, RGB_ONLY, SHAPES, SyntheticConfig, class_table

__all__ = [
    "Sprite",
    "VideoPlan",
    "make_plan",
    "render_frames",
    "render_audio",
    "EVIDENCE_COLOUR",
    "DISTRACTOR_COLOURS",
]

EVIDENCE_COLOUR = (250.0, 215.0, 40.0)
"""Every evidence sprite is saturated yellow: easy to spot even in the policy's 24x24 view."""

DISTRACTOR_COLOURS = (
    (70.0, 110.0, 235.0),
    (200.0, 70.0, 200.0),
    (60.0, 200.0, 205.0),
    (165.0, 165.0, 175.0),
    (60.0, 185.0, 80.0),
)
"""Blue, magenta, cyan, grey, green: never yellow, so colour separates evidence from clutter."""

_TRAIL = (0.5, 0.3, 0.15)  # alpha of the ghosts 1, 2, 3 frames behind (motion blur)
_Q = 4  # sub-pixel and velocity quantisation: quarter pixels


@dataclass(frozen=True)
class Sprite:
    """One moving shape inside one evidence segment (positions in pixels, y down)."""

    segment: int
    shape: int
    radius: float
    colour: tuple[float, float, float]
    x0: float
    y0: float
    vx: float
    vy: float
    first_frame: int


@dataclass
class VideoPlan:
    """Every random choice of one video.

    Attributes:
        label: class index.
        categories: ``(G,)`` evidence category per segment (`CATEGORY_NAMES` codes).
        background: ``(H, W, 3)`` float32 static backdrop.
        sprites: per segment, the sprites drawn in order (distractors first, evidence last).
        noise_seed: picks the per-frame pixel noise from a fixed bank.
        audio_seed: seeds the sound track.
    """

    label: int
    categories: np.ndarray
    background: np.ndarray
    sprites: list[list[Sprite]] = field(default_factory=list)
    noise_seed: int = 0
    audio_seed: int = 0

    @property
    def rgb_evidence(self) -> np.ndarray:
        """``(G,)`` bool: the segment shows the class."""
        return np.isin(self.categories, (RGB_ONLY, BOTH))

    @property
    def audio_evidence(self) -> np.ndarray:
        """``(G,)`` bool: the segment sounds like the class."""
        return np.isin(self.categories, (AUDIO_ONLY, BOTH))


def segment_of_frames(frames: np.ndarray | Sequence[int], cfg: SyntheticConfig) -> np.ndarray:
    """Evidence segment of each frame index (frame ``f`` is shown at time ``f / fps``)."""
    f = np.clip(np.asarray(frames, dtype=np.int64), 0, cfg.frames - 1)
    return (f * cfg.evidence_segments) // cfg.frames


def _sprite_for(
    rng: np.random.Generator,
    cfg: SyntheticConfig,
    seg: int,
    shape: int,
    colour: tuple[float, float, float],
    direction: int | None,
) -> Sprite:
    """A sprite whose whole path inside segment ``seg`` stays in the frame."""
    scale = cfg.size / 64.0
    # Radii, speeds and angles come in a few steps so that blurred sprites can be cached.
    radius = float(rng.choice((7.0, 7.5, 8.0, 8.5, 9.0)) * scale)
    speed = float(rng.choice((1.25, 1.5, 1.75)) * scale)
    if direction is None:  # distractor: any of 16 directions
        angle = rng.integers(16) * np.pi / 8
        vx, vy = speed * np.cos(angle), speed * np.sin(angle)
    else:
        vx, vy = 0.0, float(direction) * speed
    frames = np.nonzero(segment_of_frames(np.arange(cfg.frames), cfg) == seg)[0]
    first = int(frames[0]) if frames.size else 0
    steps = max(int(frames.size) - 1, 0)
    margin = radius * 1.3 + 1.0

    def start(v: float) -> float:
        lo, hi = margin - min(0.0, v * steps), cfg.size - margin - max(0.0, v * steps)
        return float(rng.uniform(lo, hi)) if hi > lo else (lo + hi) / 2

    x0, y0 = start(vx), start(vy)
    return Sprite(seg, shape, radius, colour, x0, y0, float(vx), float(vy), first)


def make_plan(cfg: SyntheticConfig, seed: int, split: int, index: int) -> VideoPlan:
    """Draw every random choice of video ``index`` of ``split`` (0 train, 1 val)."""
    rng = np.random.default_rng([seed, split, index])
    classes = class_table(cfg.num_classes, cfg.motion_pairs)
    label = int(rng.integers(cfg.num_classes))
    categories = rng.choice(4, size=cfg.evidence_segments, p=cfg.probabilities)
    low = rng.uniform(25.0, 95.0, size=(4, 4, 3)).astype(np.float32)
    background = cv2.resize(low, (cfg.size, cfg.size), interpolation=cv2.INTER_LINEAR)
    info = classes[label]
    sprites: list[list[Sprite]] = []
    for seg, cat in enumerate(categories):
        seg_sprites = []
        for _ in range(int(rng.integers(0, cfg.distractors + 1))):
            colour = DISTRACTOR_COLOURS[int(rng.integers(len(DISTRACTOR_COLOURS)))]
            seg_sprites.append(
                _sprite_for(rng, cfg, seg, int(rng.integers(len(SHAPES))), colour, None)
            )
        if cat in (RGB_ONLY, BOTH):
            direction = info.direction or int(rng.choice((-1, 1)))
            colour = tuple(
                float(c) for c in np.clip(np.array(EVIDENCE_COLOUR) + rng.uniform(-8, 8, 3), 0, 255)
            )
            seg_sprites.append(_sprite_for(rng, cfg, seg, info.shape, colour, direction))
        sprites.append(seg_sprites)
    return VideoPlan(
        label,
        categories.astype(np.int64),
        background,
        sprites,
        int(rng.integers(2**62)),
        int(rng.integers(2**62)),
    )


def _signed_distance(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Approximate signed distance (pixels, < 0 inside) to a shape of radius ``r``."""
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == "disc":
        return np.hypot(dx, dy) - r
    if shape == "square":
        return np.maximum(ax, ay) - 0.8 * r
    if shape == "diamond":
        return (ax + ay - 1.15 * r) / np.sqrt(2.0)
    if shape == "cross":
        return np.minimum(np.maximum(ax - 0.32 * r, ay - r), np.maximum(ay - 0.32 * r, ax - r))
    if shape == "triangle":
        return np.maximum(ax * 0.866 + dy * 0.5, -dy) - 0.5 * r
    return np.abs(np.hypot(dx, dy) - 0.7 * r) - 0.3 * r  # ring


@lru_cache(maxsize=8192)
def _alpha(shape: int, r_q: int, fx: int, fy: int, vx_q: int, vy_q: int, blur: bool) -> np.ndarray:
    """Anti-aliased coverage of a (motion-blurred) sprite, centred at
    ``(P//2 + fx/4, P//2 + fy/4)``.

    Arguments are quantised to quarter pixels so that sprites are cached and reused.
    """
    r, vx, vy = r_q / _Q, vx_q / _Q, vy_q / _Q
    half = int(np.ceil(1.3 * r + (3 * max(abs(vx), abs(vy)) if blur else 0) + 2))
    grid = np.arange(-half, half + 1, dtype=np.float32)
    dy, dx = grid[:, None] - fy / _Q, grid[None, :] - fx / _Q
    keep = 1.0 - np.clip(0.5 - _signed_distance(SHAPES[shape], dx, dy, r), 0, 1)
    if blur:
        for k, a in enumerate(_TRAIL, start=1):
            ghost = np.clip(
                0.5 - _signed_distance(SHAPES[shape], dx + k * vx, dy + k * vy, r), 0, 1
            )
            keep *= 1.0 - a * ghost
    return (1.0 - keep).astype(np.float32)


def _stamp(frame: np.ndarray, sprite: Sprite, f: int, blur: bool) -> None:
    """Draw ``sprite`` at frame ``f`` onto ``frame`` (in place, alpha-over)."""
    t = f - sprite.first_frame
    x, y = sprite.x0 + sprite.vx * t, sprite.y0 + sprite.vy * t
    ix, iy = int(np.floor(x)), int(np.floor(y))
    alpha = _alpha(
        sprite.shape,
        int(round(sprite.radius * _Q)),
        int((x - ix) * _Q),
        int((y - iy) * _Q),
        int(round(sprite.vx * _Q)),
        int(round(sprite.vy * _Q)),
        blur,
    )
    half = alpha.shape[0] // 2
    size = frame.shape[0]
    y0, x0 = iy - half, ix - half
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = min(size, y0 + alpha.shape[0]), min(size, x0 + alpha.shape[1])
    if ye <= ys or xe <= xs:
        return
    a = alpha[ys - y0 : ye - y0, xs - x0 : xe - x0, None]
    region = frame[ys:ye, xs:xe]
    region += a * (np.asarray(sprite.colour, np.float32) - region)


@lru_cache(maxsize=4)
def _noise_bank(size: int, count: int = 97) -> np.ndarray:
    """Fixed unit-variance noise frames; a video picks them by ``(noise_seed + 7919 f) mod 97``.

    Drawing fresh noise per frame cost half the rendering time; a shared bank is as good for a
    classifier (the noise is class-independent either way) and keeps frames deterministic.
    """
    return np.random.default_rng(12345).standard_normal((count, size, size, 3), dtype=np.float32)


def render_frames(plan: VideoPlan, cfg: SyntheticConfig, indices: Sequence[int]) -> np.ndarray:
    """Frames ``indices`` of a planned video.

    Returns:
        ``(n, H, W, 3)`` uint8 RGB.
    """
    idx = np.clip(np.asarray(indices, dtype=np.int64).reshape(-1), 0, cfg.frames - 1)
    segs = segment_of_frames(idx, cfg)
    out = np.empty((idx.size, cfg.size, cfg.size, 3), np.uint8)
    for n, (f, seg) in enumerate(zip(idx.tolist(), segs.tolist())):
        frame = plan.background.copy()
        for sprite in plan.sprites[seg]:
            _stamp(frame, sprite, f, cfg.motion_blur)
        if cfg.frame_noise > 0:
            bank = _noise_bank(cfg.size)
            frame += cfg.frame_noise * bank[(plan.noise_seed + 7919 * f) % len(bank)]
        out[n] = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
    return out


def render_audio(plan: VideoPlan, cfg: SyntheticConfig) -> np.ndarray:
    """The mono sound track of a planned video.

    Each audio-evidence segment holds the class tone (fundamental plus two harmonics, with a
    slow tremolo) in its middle 70%, so a 1.28 s window centred up to 0.19 s off the segment's
    centre still hears only its own segment's evidence. Distractors (noise bursts and fast
    sweeps, class-independent) and background noise are everywhere.

    Returns:
        ``(round(frames / fps * sample_rate),)`` float32 in [-1, 1].
    """
    rng = np.random.default_rng(plan.audio_seed)
    sr = cfg.sample_rate
    n = int(round(cfg.duration * sr))
    wave = rng.standard_normal(n, dtype=np.float32) * np.float32(rng.uniform(*cfg.audio_noise))
    seg_len = cfg.segment_seconds
    freq = class_table(cfg.num_classes, cfg.motion_pairs)[plan.label].frequency
    for seg, has in enumerate(plan.audio_evidence.tolist()):
        if has:
            a = int(round((seg + 0.15) * seg_len * sr))
            b = int(round((seg + 0.85) * seg_len * sr))
            t = np.arange(b - a, dtype=np.float32) / sr
            tone = np.zeros_like(t)
            for h, amp in ((1, 1.0), (2, 0.5), (3, 0.25)):
                if h * freq < 0.45 * sr:
                    tone += amp * np.sin(2 * np.pi * h * freq * t + rng.uniform(0, 2 * np.pi))
            tremolo = 0.75 + 0.25 * np.sin(2 * np.pi * rng.uniform(2, 6) * t)
            fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
            wave[a:b] += np.float32(rng.uniform(0.08, 0.2)) * tone * tremolo * fade
        for _ in range(int(rng.poisson(cfg.audio_distractor_rate))):
            dur = rng.uniform(0.08, 0.3)
            start = int(rng.uniform(seg * seg_len, (seg + 1) * seg_len - dur) * sr)
            t = np.arange(int(dur * sr), dtype=np.float32) / sr
            env = np.sin(np.pi * t / dur) ** 2
            if rng.random() < 0.5:  # noise burst
                event = rng.standard_normal(t.size, dtype=np.float32)
            else:  # fast sweep between two random frequencies
                f1, f2 = np.exp(rng.uniform(np.log(300), np.log(9000), 2))
                inst = f1 * (f2 / f1) ** (t / dur)
                event = np.sin(2 * np.pi * np.cumsum(inst) / sr)
            seg_end = min(n, start + t.size)
            wave[start:seg_end] += (rng.uniform(0.05, 0.2) * env * event)[: seg_end - start]
    return np.clip(wave, -1.0, 1.0).astype(np.float32)
