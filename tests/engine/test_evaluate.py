"""load_for_evaluation: a checkpoint's model and an evaluation loader (demo, benchmarks)."""

from __future__ import annotations

import torch

import adamml
from adamml.engine.checkpoint import save_checkpoint
from adamml.engine.distributed import DistInfo
from adamml.engine.evaluate import evaluate, load_for_evaluation


def test_load_for_evaluation_gives_the_checkpoint_model_and_an_eval_loader(tmp_path) -> None:
    model = adamml.create_model("test_unimodal_rgb", num_classes=3)
    state = {"model_name": "test_unimodal_rgb", "num_classes": 3, "model": model.state_dict()}
    path = save_checkpoint(state, tmp_path, "best.pt", update_last=False)

    loaded, loader = load_for_evaluation(path, "synthetic:5", segments=2, batch_size=2)

    assert len(loader.dataset) == 5
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())
    index, inputs, _ = next(iter(loader))
    assert inputs["rgb"].shape[:2] == (2, 2)  # a batch of 2 videos, 2 segments each
    result = evaluate(loaded, loader, DistInfo())
    assert result.index.tolist() == [0, 1, 2, 3, 4] and result.logits.shape == (5, 3)
