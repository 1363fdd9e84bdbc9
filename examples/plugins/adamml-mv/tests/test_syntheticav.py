"""adamml's SyntheticAV mp4s (x264 veryfast, crf 18, g=16) carry motion vectors that follow the
moving sprites, so ``mv`` can be trained on them."""

from __future__ import annotations

import numpy as np
from adamml.data.synthetic import SyntheticAV
from adamml.data.synthetic.render import segment_of_frames
from adamml.data.synthetic.writer import write_video

from adamml_mv.vectors import read_motion_vectors


def test_syntheticav_vectors_follow_the_sprites(tmp_path) -> None:
    ds = SyntheticAV(1, seed=0)
    cfg, plan = ds.config, ds.plan(0)
    path = write_video(tmp_path / "v.mp4", ds.video(0))
    fields = read_motion_vectors(path, range(cfg.frames), size=None)
    with_vectors = np.array([f.any() for f in fields])
    assert with_vectors.mean() > 0.9  # measured 0.94: all but the 10 I-frames (g=16)

    yy, xx = np.mgrid[0 : cfg.size, 0 : cfg.size] + 0.5
    errors, background = [], []
    for f in np.flatnonzero(with_vectors):
        far = np.ones((cfg.size, cfg.size), bool)
        for s in plan.sprites[segment_of_frames([f], cfg)[0]]:
            t = f - s.first_frame
            d = np.hypot(xx - (s.x0 + s.vx * t), yy - (s.y0 + s.vy * t))
            far &= d > s.radius * 1.5 + 4
            if t > 0:  # the sprite also was in the previous frame
                mean = fields[f][d < s.radius * 0.7].mean(0)
                errors.append(np.hypot(*(mean - (s.vx, s.vy))))
        if far.any():
            background.append(np.linalg.norm(fields[f][far], axis=-1).mean())
    # measured on 4 videos: sprites move 1.54 px per frame on average; the mean vector inside
    # them is 0.27 px off (median 0.12); the background reads 0.49 px of frame noise
    assert len(errors) > 50
    assert np.median(errors) < 0.5
    assert np.mean(background) < 1.0
