"""Reduced precision: bf16/fp16 autocast for the backbones, decisions and fusion in float32."""

from __future__ import annotations

import pytest
import torch

import adamml
from adamml.errors import ConfigError


def _model_and_inputs(seed: int = 0):
    torch.manual_seed(seed)
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=6).eval()
    x = {m: torch.randn(16, 10, *s.shape) for m, s in model.input_spec.items()}
    return model, x


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_keeps_clear_cut_decisions_and_predictions(precision: str) -> None:
    model, x = _model_and_inputs()
    with torch.inference_mode():
        ref = model(x)
        model.set_precision(precision)
        low = model(x)
    assert low.logits.dtype == torch.float32 and low.decisions.dtype == torch.float32
    margin = (ref.policy_logits[..., 1] - ref.policy_logits[..., 0]).abs()
    clear = margin > 0.05
    assert clear.float().mean() > 0.5  # the check below covers most segments
    assert torch.equal(low.decisions[clear], ref.decisions[clear])
    top2 = ref.logits.topk(2, dim=1).values
    sure = (top2[:, 0] - top2[:, 1]) > 0.01
    assert torch.equal(low.logits.argmax(1)[sure], ref.logits.argmax(1)[sure])
    assert torch.allclose(low.logits, ref.logits, atol=0.05)


def test_precision_is_checked_and_training_backpropagates_through_autocast() -> None:
    model, x = _model_and_inputs()
    with pytest.raises(ConfigError, match="bf16"):
        model.set_precision("int8")
    model.train().set_precision("bf16")
    out = model(x)
    (out.logits.sum() + out.decisions.sum()).backward()
    assert all(p.grad is not None for p in model.router.parameters())
    assert model.policy.backbones["rgb"].conv1.weight.grad is not None


# the scaler skips the first steps (inf gradients at its initial scale): no PyTorch warning
@pytest.mark.filterwarnings("error:Detected call of:UserWarning")
def test_trainer_runs_fp16_with_a_gradient_scaler(tmp_path) -> None:
    from adamml.engine.config import TrainConfig
    from adamml.engine.trainer import Trainer

    cfg = TrainConfig.from_dict(
        {
            "model": "test_adamml_rgb_audio",
            "num_classes": 3,
            "precision": "fp16",
            "data": {
                "train": "synthetic:12",
                "val": "synthetic:6",
                "segments_train": 2,
                "segments_eval": 2,
            },
            "schedule": {"warmup_epochs": 1, "joint_epochs": 1, "finetune_epochs": 0},
            "pretrain": "none",
            "batch_size": 6,
            "policy_start": "immediate",
        }
    )
    trainer = Trainer(cfg, tmp_path / "run", show_progress=False)
    assert trainer.scaler.is_enabled() and trainer.model.precision == "fp16"
    metrics = trainer.run()
    assert 0.0 <= metrics["top1"] <= 100.0
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["grad_scaler"]["scale"] > 0
