"""adamml: AdaMML (ICCV 2021) adaptive multi-modal video recognition as a library.

Public names are imported lazily (PEP 562), so ``import adamml`` is cheap and each building
block can be used without the rest. See the docs for the shape legend (``adamml.types``).

Example:
    >>> import adamml
    >>> model = adamml.create_model("test_adamml_rgb_audio", num_classes=5)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # assembled models
    "AdaMML": "adamml.model",
    "create_model": "adamml.zoo",
    "list_models": "adamml.zoo",
    "register_model": "adamml.zoo",
    "LiteEval": "adamml.liteeval",
    # policies and the gate
    "GumbelGate": "adamml.policies",
    "TemperatureSchedule": "adamml.policies",
    "PolicyLSTM": "adamml.policies",
    "PolicyFC": "adamml.policies",
    "JointGatePolicy": "adamml.policies",
    "RandomPolicy": "adamml.policies",
    "AllPolicy": "adamml.policies",
    "create_policy": "adamml.policies",
    "list_policies": "adamml.policies",
    # online inference
    "VideoStream": "adamml.streaming",
    "StreamStep": "adamml.streaming",
    "EarlyExit": "adamml.streaming",
    # routing, fusion, loss
    "ModalityRouter": "adamml.router",
    "LearnableLateFusion": "adamml.fusion",
    "AverageFusion": "adamml.fusion",
    "ClasswiseFusion": "adamml.fusion",
    "MaxFusion": "adamml.fusion",
    "FC2Fusion": "adamml.fusion",
    "create_fusion": "adamml.fusion",
    "list_fusions": "adamml.fusion",
    "EfficiencyLoss": "adamml.losses",
    # backbones and modalities
    "create_backbone": "adamml.backbones",
    "list_backbones": "adamml.backbones",
    "Modality": "adamml.modalities",
    "InputSpec": "adamml.modalities",
    "get_modality": "adamml.modalities",
    "list_modalities": "adamml.modalities",
    "register_modality": "adamml.modalities",
    # cost accounting and checkpoints
    "count_gflops": "adamml.flops",
    "CostTable": "adamml.flops",
    "load_reference_checkpoint": "adamml.reference",
    # any budget from one trained model (docs/calibration.md)
    "calibrate": "adamml.engine.calibrate",
    "CalibrationResult": "adamml.engine.calibrate",
    "fusion_gflops": "adamml.engine.replay",
    # registries and plugins
    "MODALITIES": "adamml.registries",
    "BACKBONES": "adamml.registries",
    "POLICIES": "adamml.registries",
    "FUSIONS": "adamml.registries",
    "MODELS": "adamml.registries",
    "list_plugins": "adamml.registries",
    # types and errors
    "ModelOutput": "adamml.types",
    "PolicyOutput": "adamml.types",
    "AdamMLError": "adamml.errors",
    "ShapeError": "adamml.errors",
    "ConfigError": "adamml.errors",
    "CheckpointError": "adamml.errors",
    "UnknownNameError": "adamml.errors",
    "UnknownModalityError": "adamml.errors",
    "UnknownBackboneError": "adamml.errors",
    "UnknownPolicyError": "adamml.errors",
    "UnknownFusionError": "adamml.errors",
    "UnknownModelError": "adamml.errors",
    "DuplicateNameError": "adamml.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'adamml' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .backbones import create_backbone, list_backbones
    from .engine.calibrate import CalibrationResult, calibrate
    from .engine.replay import fusion_gflops
    from .errors import *  # noqa: F403
    from .flops import CostTable, count_gflops
    from .fusion import (
        AverageFusion,
        ClasswiseFusion,
        FC2Fusion,
        LearnableLateFusion,
        MaxFusion,
        create_fusion,
        list_fusions,
    )
    from .liteeval import LiteEval
    from .losses import EfficiencyLoss
    from .modalities import InputSpec, Modality, get_modality, list_modalities, register_modality
    from .model import AdaMML
    from .policies import (
        AllPolicy,
        GumbelGate,
        JointGatePolicy,
        PolicyFC,
        PolicyLSTM,
        RandomPolicy,
        TemperatureSchedule,
        create_policy,
        list_policies,
    )
    from .reference import load_reference_checkpoint
    from .registries import BACKBONES, FUSIONS, MODALITIES, MODELS, POLICIES, list_plugins
    from .router import ModalityRouter
    from .streaming import EarlyExit, StreamStep, VideoStream
    from .types import ModelOutput, PolicyOutput
    from .zoo import create_model, list_models, register_model
