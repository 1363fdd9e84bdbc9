"""``adamml predict`` on one video of a data source: ``synthetic:N,index=I`` and the old form."""

from __future__ import annotations

import pytest
import torch

from adamml.data.sources import build_dataset
from adamml.engine.predict import load_inputs
from adamml.errors import ConfigError
from adamml.modalities import InputSpec

SPEC = {"rgb": InputSpec((2, 3, 8, 8))}


def test_index_picks_one_video_of_the_evaluation_dataset() -> None:
    x = load_inputs("synthetic:5,index=3", SPEC, 2, seed=1, num_classes=2)
    ds = build_dataset("synthetic:5", SPEC, segments=2, train=False, num_classes=2, seed=1)
    assert torch.equal(x["rgb"], ds[3][0]["rgb"])
    with pytest.raises(ConfigError, match="out of range"):
        load_inputs("synthetic:5,index=5", SPEC, 2, num_classes=2)


def test_old_synthetic_index_form_warns_and_means_the_same_video() -> None:
    with pytest.warns(FutureWarning, match="synthetic:4,index=3"):
        old = load_inputs("synthetic:3", SPEC, 2, num_classes=2)
    new = load_inputs("synthetic:4,index=3", SPEC, 2, num_classes=2)
    assert torch.equal(old["rgb"], new["rgb"])


def test_missing_file_is_still_reported_as_missing() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_inputs("nothing_here.mp4", SPEC, 2)
