"""Every registered policy on every registered model and on its ``test_`` twin, with a plugin
distribution installed that adds a modality, a backbone, a policy and a model (issue #12:
plugins are first class). A combination either builds (and its twin runs) or the builder says
why not with a ConfigError; nothing is skipped.

The full-size models are only built, on the ``meta`` device; the twins are built and run on
tiny inputs. Two shortcuts keep this within a minute on 2 cores, neither changing what is
built or run:

- each backbone is built once per (name, modality, options) and that one module serves every
  combination: its construction does not depend on the policy (building the same ResNet-50
  ninety times, or deep-copying it, was most of the time);
- the twins' cost tables are counted on the tiny modules themselves instead of meta-device
  copies (``measure_macs(on_meta=False)``: the same numbers, checked here for the plugin model,
  and several times faster for tiny modules, whose meta kernels cost more than the arithmetic).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from plugin_helpers import installed, write_distribution

import adamml
import adamml.backbones
import adamml.flops
from adamml.errors import AdamMLError
from adamml.registries import BACKBONES, MODALITIES, MODELS, POLICIES
from adamml.zoo import get_recipe

NUM_CLASSES = 3

# Combinations that cannot work, and the ConfigError the builder gives for them:
# {(model, policy): message fragment}. Empty: every registered policy fits every model.
CANNOT_WORK: dict[tuple[str, str], str] = {}
# LiteEval's gate is its coarse path, so no policy replaces it: create_model refuses the
# override for every policy (tests/test_liteeval.py runs the model as it is built).
OWN_GATE = {"liteeval_rgb": r"does not take \['policy'\]"}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    folder = write_distribution(tmp_path_factory.mktemp("site-packages"))
    with installed(folder):
        # the matrix below is read from the registries: make sure the plugin is in it
        assert "depth" in MODALITIES and "depth_net" in BACKBONES
        assert "mean_score" in POLICIES
        assert {"depth_adamml", "test_depth_adamml"} <= set(MODELS.list())
        yield


@pytest.fixture
def backbones_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    build = adamml.backbones.create_backbone
    built: dict[Any, torch.nn.Module] = {}

    def create_backbone(name: str, *, modality: Any, **kwargs: Any) -> torch.nn.Module:
        key = (name, modality, torch.empty(0).device, tuple(sorted(kwargs.items())))
        if key not in built:
            built[key] = build(name, modality=modality, **kwargs)
        return built[key]

    monkeypatch.setattr(adamml.backbones, "create_backbone", create_backbone)


@pytest.fixture
def costs_counted_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        adamml.flops, "measure_macs", functools.partial(adamml.flops.measure_macs, on_meta=False)
    )


def _is_twin(name: str) -> bool:
    try:
        return get_recipe(name).tiny
    except AdamMLError:  # a plugin's factory without a recipe: size unknown, built on meta
        return False


def _build(model: str, policy: str) -> adamml.AdaMML | str:
    """The model, or the ConfigError's message for a combination in CANNOT_WORK."""
    expected = CANNOT_WORK.get((model, policy)) or OWN_GATE.get(model.removeprefix("test_"))
    if expected is None:
        return adamml.create_model(model, num_classes=NUM_CLASSES, policy=policy)
    with pytest.raises(adamml.ConfigError, match=expected) as err:
        adamml.create_model(model, num_classes=NUM_CLASSES, policy=policy)
    return str(err.value)


def _check_built(model: adamml.AdaMML, policy: str) -> None:
    factory = POLICIES.get(policy)
    assert not isinstance(factory, type) or isinstance(model.policy, factory)
    assert len(model.policy_modalities) == len(model.modalities)
    takes = getattr(POLICIES.get(policy), "takes_feature_extractors", False)
    assert bool(model.policy_part_names) == takes  # extractors exactly when it takes them


def _combinations(twins: bool) -> Iterator[tuple[str, str]]:
    for model in MODELS.list():
        if _is_twin(model) == twins:
            for policy in POLICIES.list():
                yield model, policy


def test_every_model_has_its_test_twin(plugin: None) -> None:
    full = [m for m in MODELS.list() if not _is_twin(m) and not m.startswith("test_")]
    assert "depth_adamml" in full
    assert [m for m in full if f"test_{m}" not in MODELS] == []


def test_every_policy_builds_on_every_full_size_model(
    plugin: None, backbones_built_once: None
) -> None:
    failures = []
    with torch.device("meta"):
        for model, policy in _combinations(twins=False):
            try:
                built = _build(model, policy)
                if not isinstance(built, str):
                    _check_built(built, policy)
            except Exception as err:  # collected, so one run lists every broken combination
                failures.append(f"{model} + {policy}: {type(err).__name__}: {err}")
    assert not failures, "\n".join(failures)


def test_every_policy_runs_on_every_test_twin(
    plugin: None, backbones_built_once: None, costs_counted_in_place: None
) -> None:
    failures = []
    for model, policy in _combinations(twins=True):
        try:
            built = _build(model, policy)
            if isinstance(built, str):
                continue
            _check_built(built, policy)
            x = {m: torch.randn(1, 2, *s.shape) for m, s in built.input_spec.items()}
            train = built.train()(x)
            # evaluation too (real skipping in the router, the gates' argmax), without the
            # inference fast path, whose folded copies would double the time
            with torch.no_grad():
                test = built.configure_inference(enabled=False).eval()(x)
            for out in (train, test):
                assert out.logits.shape == (1, NUM_CLASSES)
                assert out.decisions.shape == (1, 2, len(built.modalities))
                assert ((out.decisions == 0) | (out.decisions == 1)).all()
                assert torch.isfinite(out.logits).all() and torch.isfinite(out.gflops).all()
        except Exception as err:  # collected, so one run lists every broken combination
            failures.append(f"{model} + {policy}: {type(err).__name__}: {err}")
    assert not failures, "\n".join(failures)


def test_the_plugin_twin_costs_the_same_counted_in_place_or_on_meta(plugin: None) -> None:
    from adamml.flops import measure_cost_table

    for policy in ("mean_score", "lstm"):
        model = adamml.create_model("test_depth_adamml", num_classes=NUM_CLASSES, policy=policy)
        on_meta = measure_cost_table(model)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(
                adamml.flops,
                "measure_macs",
                functools.partial(adamml.flops.measure_macs, on_meta=False),
            )
            in_place = measure_cost_table(model)
        assert in_place == on_meta
        assert on_meta.recognition["depth"] > 0 and on_meta.policy["depth"] > 0
