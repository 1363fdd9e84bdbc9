from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import adamml
from adamml.errors import ShapeError


@pytest.mark.parametrize(
    "name,shape",
    [
        ("rgb", (8, 3, 224, 224)),
        ("flow", (8, 10, 224, 224)),
        ("rgbdiff", (8, 15, 224, 224)),
        ("audio", (1, 1, 256, 256)),
    ],
)
def test_input_spec(name, shape) -> None:
    assert adamml.get_modality(name).input_spec.shape == shape


def test_policy_view_matches_reference() -> None:
    rgb = adamml.get_modality("rgb").replace(size=(32, 32), policy_size=(20, 20))
    x = torch.randn(2, 3, 8, 3, 32, 32)
    view = rgb.policy_view(x)
    assert view.shape == (2, 3, 4, 3, 20, 20)
    # the reference: bilinear resize of the crop, then frames 0, 2, 4, 6
    expected = F.interpolate(x[1, 2, 4:5], size=(20, 20), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(view[1, 2, 2], expected)


def test_audio_policy_view_is_identity() -> None:
    audio = adamml.get_modality("audio")
    x = torch.randn(1, 2, 1, 1, 256, 256)
    assert audio.policy_view(x) is x


def test_check_names_the_modality() -> None:
    with pytest.raises(ShapeError, match=r"rgb input must have shape \(B, S, 8, 3, 224, 224\)"):
        adamml.get_modality("rgb").check(torch.zeros(1, 8, 3, 224, 224))
