"""The engine on adamml's own tiny model (``test_adamml_rgb_audio``), not only the stand-in.

Marked slow: 14 s on an idle 2-core machine (building the model measures its cost table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adamml.engine import TrainConfig, Trainer


@pytest.mark.slow
def test_real_tiny_model_trains_and_evaluates(tmp_path: Path) -> None:
    try:
        import adamml

        adamml.create_model("test_adamml_rgb_audio", num_classes=3)
    except Exception as err:  # pragma: no cover - while the model blocks are being written
        pytest.skip(f"test_adamml_rgb_audio unavailable: {err}")
    cfg = TrainConfig.from_dict(
        {
            "model": "test_adamml_rgb_audio",
            "num_classes": 3,
            "batch_size": 4,
            "seed": 0,
            "data": {
                "train": "synthetic:8",
                "val": "synthetic:4",
                "segments_train": 2,
                "segments_eval": 3,
            },
            "schedule": {"warmup_epochs": 1, "joint_epochs": 1, "finetune_epochs": 0},
        }
    )
    metrics = Trainer(cfg, tmp_path / "run", show_progress=False).run()
    assert metrics["num_videos"] == 4 and set(metrics["selection_rate"]) == {"rgb", "audio"}
    assert metrics["gflops"] > 0
