"""A throw-away plugin distribution for the tests: a temporary ``.dist-info`` folder on
``sys.path``, no pip (STYLE.md, "Plugin tests").

``adamml-depth 0.1`` provides one component of each kind a model is built from:

| group | name | object |
| --- | --- | --- |
| ``adamml.modalities`` | ``depth`` | a 1-channel `Modality` with its own backbones and tiny twin |
| ``adamml.backbones`` | ``depth_net`` | a small conv net obeying the backbone contract |
| ``adamml.policies`` | ``mean_score`` | a policy written from scratch (no adamml base class) that
  takes feature extractors |
| ``adamml.models`` | ``depth_adamml`` | a `ModelRecipe` on rgb + depth (and its ``test_`` twin) |
"""

from __future__ import annotations

import sys
import textwrap
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from adamml.registries import REGISTRIES

DIST = "adamml-depth"
VERSION = "0.1"
MODULE = "adamml_depth_plugin"

SOURCE = '''
"""adamml-depth: depth maps as a modality (a test plugin)."""

from __future__ import annotations

import torch
from torch import nn

from adamml.modalities import Modality
from adamml.types import PolicyOutput
from adamml.zoo import ModelRecipe

DEPTH = Modality(
    "depth",
    channels=1,
    frames=4,
    size=(48, 48),
    policy_size=(32, 32),
    recognition_backbone="depth_net",
    policy_backbone="depth_net",
    cost_weight=0.5,
    description="depth maps, 4 per segment",
    tiny={"frames": 2, "size": (16, 16), "policy_size": (12, 12)},
)


class DepthNet(nn.Module):
    """(N, T, C, H, W) -> (N, K), or (N, D) features with num_classes=0."""

    def __init__(self, *, modality: Modality, num_classes: int = 0, width: int = 8) -> None:
        super().__init__()
        self.in_chans, self.num_features, self.num_classes = modality.channels, width, num_classes
        self.body = nn.Sequential(
            nn.Conv2d(modality.channels, width, 3, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.fc = nn.Linear(width, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        n, t = x.shape[:2]
        return self.body(x.flatten(0, 1)).view(n, t, -1).mean(dim=1)

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()


class MeanScorePolicy(nn.Module):
    """Scores each modality's extractor features; uses a segment when 'use' scores higher."""

    needs_views = True
    takes_feature_extractors = True

    def __init__(self, modalities, *, backbones, threshold: float = 0.5) -> None:
        super().__init__()
        self.modalities = tuple(modalities)
        self.threshold = float(threshold)
        self.backbones = nn.ModuleDict({m: backbones[m] for m in self.modalities})
        self.heads = nn.ModuleDict(
            {m: nn.Linear(b.num_features, 2) for m, b in self.backbones.items()}
        )

    def extractors(self) -> dict[str, nn.Module]:
        return dict(self.backbones.items())

    def recurrent_feedback(self) -> dict[nn.Module, int]:
        return {}

    def forward(self, views) -> PolicyOutput:
        logits = []
        for m in self.modalities:
            x = views[m]
            b, s = x.shape[:2]
            logits.append(self.heads[m](self.backbones[m](x.flatten(0, 1))).view(b, s, 2))
        z = torch.stack(logits, dim=2).float()  # (B, S, M, 2)
        soft = z.softmax(dim=-1)[..., 1]
        hard = (soft > self.threshold).float()
        return PolicyOutput(hard + (soft - soft.detach()), z)  # exactly 0/1, straight-through


DEPTH_ADAMML = ModelRecipe(
    ("rgb", "depth"),
    policy="mean_score",
    policy_args={"threshold": 0.4},
    description="AdaMML on RGB + depth with the mean-score policy (a plugin)",
)
'''

ENTRY_POINTS = {
    "adamml.modalities": f"depth = {MODULE}:DEPTH",
    "adamml.backbones": f"depth_net = {MODULE}:DepthNet",
    "adamml.policies": f"mean_score = {MODULE}:MeanScorePolicy",
    "adamml.models": f"depth_adamml = {MODULE}:DEPTH_ADAMML",
}


def write_distribution(
    folder: Path,
    *,
    dist: str = DIST,
    version: str = VERSION,
    module: str = MODULE,
    source: str = SOURCE,
    entry_points: Mapping[str, str] = ENTRY_POINTS,
) -> Path:
    """Write ``module.py`` and ``<dist>-<version>.dist-info`` (METADATA, entry_points.txt) into
    ``folder``; put ``folder`` on ``sys.path`` (or ``PYTHONPATH``) to "install" it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(textwrap.dedent(source))
    info = folder / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(
        "".join(f"[{group}]\n{line}\n\n" for group, line in entry_points.items())
    )
    return folder


def reload_all_plugins() -> None:
    """Read every registry's entry points again (after adding or removing a distribution)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for registry in REGISTRIES.values():
            registry.reload_plugins()


@contextmanager
def installed(folder: Path, module: str = MODULE) -> Iterator[Path]:
    """The distribution in ``folder`` installed (on ``sys.path``, every registry reloaded) for
    the duration of the block, then removed again."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(folder))
        try:
            reload_all_plugins()
            yield folder
        finally:
            mp.undo()
            sys.modules.pop(module, None)
            reload_all_plugins()
