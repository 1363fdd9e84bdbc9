"""Training and evaluation engine: stages, metrics, checkpoints, distributed, logs (AdaMML Sec. 4.1,
"Training Details"; reference §6 and §9 with their bugs fixed).

``Trainer(cfg, out).run()`` is what ``adamml train`` calls; ``evaluate`` and ``summarize`` are
what ``adamml eval`` calls.
"""

from __future__ import annotations

from .checkpoint import load_checkpoint, save_checkpoint
from .config import DataConfig, LossConfig, OptimConfig, ScheduleConfig, TrainConfig
from .evaluate import evaluate
from .instantiate import build_model, model_from_checkpoint
from .metrics import EvalResult, mean_average_precision, selection_rate, summarize, topk_accuracy
from .runlog import NonFiniteLossError
from .trainer import Trainer

__all__ = [
    "Trainer",
    "TrainConfig",
    "DataConfig",
    "ScheduleConfig",
    "LossConfig",
    "OptimConfig",
    "evaluate",
    "summarize",
    "EvalResult",
    "topk_accuracy",
    "mean_average_precision",
    "selection_rate",
    "save_checkpoint",
    "load_checkpoint",
    "build_model",
    "model_from_checkpoint",
    "NonFiniteLossError",
]
