"""The shared argument checks (`adamml._checks`) and the factories that use them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import adamml
from adamml._checks import accepts, canonical_inputs, canonical_modalities, check_kwargs
from adamml.errors import ConfigError, ShapeError, UnknownModalityError, UnusedInputWarning


def _factory(modalities, *, hidden: int, p: float = 0.5):  # noqa: ANN001, ANN202
    return None


def test_check_kwargs_names_unknown_and_accepted() -> None:
    with pytest.raises(
        ConfigError,
        match=r"thing 'x' does not take \['q'\]; it accepts "
        r"\['hidden', 'p'\]",
    ):
        check_kwargs(_factory, {"hidden": 1, "q": 2}, what="thing 'x'")


def test_check_kwargs_names_missing_required() -> None:
    with pytest.raises(ConfigError, match=r"needs \['hidden'\]"):
        check_kwargs(_factory, {"p": 0.1}, what="thing 'x'")
    check_kwargs(_factory, {"hidden": 3}, what="thing 'x'")  # fits


def test_check_kwargs_passes_var_keyword_and_unreadable_signatures() -> None:
    check_kwargs(lambda **kw: None, {"anything": 1}, what="f")
    check_kwargs(dict, {"anything": 1}, what="dict")  # no readable signature: not checked
    assert accepts(_factory, "p") and not accepts(_factory, "q")
    assert accepts(lambda **kw: None, "q")


@pytest.mark.parametrize(
    "call",
    [
        lambda: adamml.create_model("test_adamml_rgb_audio", num_classes=3, polcy="fc"),
        lambda: adamml.create_policy("random", modalities=("rgb",), q=1),
        lambda: adamml.create_fusion("max", modalities=("rgb",), q=1),
        lambda: adamml.create_backbone("tiny_tsn", modality="rgb", q=1),
        lambda: adamml.create_model("test_adamml_rgb_audio", num_classes=3, fusion_args={"q": 1}),
    ],
)
def test_every_factory_rejects_an_unknown_keyword_with_the_accepted_names(call) -> None:
    with pytest.raises(ConfigError, match=r"does not take \['(polcy|q)'\]; it accepts \["):
        call()


def test_models_registry_holds_factories_only() -> None:
    for name in adamml.list_models():
        entry = adamml.MODELS.get(name)
        assert callable(entry) and isinstance(entry.recipe, adamml.zoo.ModelRecipe)
    assert adamml.zoo.get_recipe("adamml_rgb_audio").modalities == ("rgb", "audio")


def test_canonical_modalities() -> None:
    assert canonical_modalities(["rgb", "sound"]) == ("rgb", "audio")
    assert canonical_modalities("rgb") == ("rgb",)
    with pytest.raises(ConfigError, match="distinct"):
        canonical_modalities(["audio", "sound"])
    with pytest.raises(ConfigError, match="a fusion needs a non-empty"):
        canonical_modalities([], what="a fusion")
    with pytest.raises(ConfigError, match="non-empty sequence of modality names"):
        canonical_modalities(["rgb", 3])  # type: ignore[list-item]


def test_canonical_inputs_reads_batch_and_segments() -> None:
    x = {"rgb": torch.zeros(2, 3, 4, 3, 8, 8), "sound": torch.zeros(2, 3, 1, 1, 8, 8)}
    canon, b, s = canonical_inputs(x, ("rgb", "audio"))
    assert (b, s) == (2, 3) and set(canon) == {"rgb", "audio"}


@pytest.mark.parametrize(
    "inputs, message",
    [
        ([torch.zeros(1)], r"inputs must be a dict \{modality: tensor .*got a list"),
        (
            {"rgb": np.zeros((2, 3, 4, 3, 8, 8)), "audio": torch.zeros(2, 3, 1, 1, 8, 8)},
            r"inputs\['rgb'\] is a numpy.ndarray.*torch.from_numpy",
        ),
        (
            {"rgb": [[0.0]], "audio": torch.zeros(2, 3, 1, 1, 8, 8)},
            r"inputs\['rgb'\] is a list.*torch.stack",
        ),
        ({"audio": torch.zeros(2, 3, 1, 1, 8, 8)}, r"inputs lack \['rgb'\]"),
        (
            {"rgb": torch.zeros(2, 3, 4, 3, 8, 8), "audio": torch.zeros(2, 4, 1, 1, 8, 8)},
            r"disagree on \(B, S\)",
        ),
        (
            {
                "rgb": torch.zeros(2, 3, 4, 3, 8, 8),
                "sound": torch.zeros(2, 3, 1, 1, 8, 8),
                "audio": torch.zeros(2, 3, 1, 1, 8, 8),
            },
            "twice",
        ),
    ],
)
def test_canonical_inputs_explains_each_mistake(inputs, message) -> None:
    with pytest.raises(ShapeError, match=message):
        canonical_inputs(inputs, ("rgb", "audio"))


def test_unused_inputs_warn_and_unknown_keys_are_rejected_at_the_model_level() -> None:
    x = {"rgb": torch.zeros(1, 2, 4, 3, 8, 8), "audio": torch.zeros(1, 2, 1, 1, 8, 8)}
    with pytest.warns(UnusedInputWarning, match=r"\['audio'\], which this model does not use"):
        canonical_inputs(x, ("rgb",), unused="warn")
    canonical_inputs(x, ("rgb",))  # blocks ignore what the model hands them in addition
    with pytest.raises(UnknownModalityError, match="did you mean 'rgb'"):
        canonical_inputs({**x, "rbg": x["rgb"]}, ("rgb",), unused="warn")


def test_check_kwargs_suggests_the_closest_accepted_name() -> None:
    with pytest.raises(ConfigError, match=r"it accepts \[.*\]; 'polcy': did you mean 'policy'\?"):
        adamml.create_model("test_adamml_rgb_audio", num_classes=3, polcy="fc")
    with pytest.raises(ConfigError) as info:  # nothing close: no guess
        check_kwargs(_factory, {"zzz": 1}, what="thing 'x'")
    assert "did you mean" not in str(info.value)
