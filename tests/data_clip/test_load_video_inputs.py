from __future__ import annotations

import pytest
import torch

import adamml
from adamml.data import load_video_inputs
from adamml.data.errors import DataError


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    from adamml.data.synthetic import write_synthetic_av

    out = tmp_path_factory.mktemp("syn")
    write_synthetic_av(out, 2, num_val=1, seed=3)
    return sorted(out.glob("videos/*/*.mp4"))


def test_inputs_fit_the_model(written) -> None:
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=6).eval()
    x = load_video_inputs(written[0], model, segments=10)
    assert {m: tuple(t.shape) for m, t in x.items()} == {
        "rgb": (1, 10, 4, 3, 32, 32),
        "audio": (1, 10, 1, 1, 32, 32),
    }
    assert model(x).logits.shape == (1, 6)


def test_evaluation_inputs_are_deterministic(written) -> None:
    spec = adamml.create_model("test_adamml_rgb_audio", num_classes=6).input_spec
    a = load_video_inputs(written[1], spec, segments=4)
    b = load_video_inputs(written[1], spec, segments=4)
    for m in a:
        torch.testing.assert_close(a[m], b[m], rtol=0, atol=0)


def test_bad_file_is_a_typed_error(tmp_path) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    spec = adamml.create_model("test_adamml_rgb_audio", num_classes=6).input_spec
    with pytest.raises(DataError, match="notes.mp4"):
        load_video_inputs(bad, spec)
