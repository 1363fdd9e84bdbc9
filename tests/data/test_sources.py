"""Data sources (adamml.data.sources): the forms of data.train/val/test, the registry, plugins."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

import adamml
from adamml.data.sources import (
    DATA_SOURCES,
    DataSource,
    build_dataset,
    parse_source,
    source_flow_method,
)
from adamml.data.synthetic.patterns import GaussianPatternDataset
from adamml.errors import ConfigError, UnknownDataSourceError
from adamml.modalities import InputSpec

SPEC = {"rgb": InputSpec((2, 3, 8, 8)), "audio": InputSpec((1, 1, 8, 8))}


@pytest.mark.parametrize(
    "text, parsed",
    [
        ("train.csv", ("manifest", "train.csv", {})),
        ("C:/data/train.csv", ("manifest", "C:/data/train.csv", {})),
        ("manifest:data/train.csv", ("manifest", "data/train.csv", {})),
        ("synthetic:12", ("synthetic", "12", {})),
        (
            "syntheticav:300,split=test,p_both=0.1",
            ("syntheticav", "300", {"split": "test", "p_both": 0.1}),
        ),
    ],
)
def test_parse_source_forms(text, parsed) -> None:
    assert parse_source(text) == parsed


def test_builtin_sources_are_registered() -> None:
    assert {"manifest", "synthetic", "syntheticav"} <= set(DATA_SOURCES.list())
    assert DATA_SOURCES is adamml.registries.DATA_SOURCES
    assert "adamml.data_sources" in adamml.registries.REGISTRIES


def test_unknown_scheme_names_close_matches() -> None:
    with pytest.raises(UnknownDataSourceError, match="did you mean 'syntheticav'"):
        parse_source("syntheticv:10")
    with pytest.raises(ConfigError, match="key=value"):
        parse_source("synthetic:10,strength")


def test_synthetic_is_gaussian_class_patterns_with_held_out_noise() -> None:
    train = build_dataset("synthetic:4", SPEC, segments=3, train=True, num_classes=2)
    val = build_dataset("synthetic:4", SPEC, segments=3, train=False, num_classes=2)
    assert isinstance(train, GaussianPatternDataset)
    (x, y), (v, w) = train[1], val[1]
    assert y == w == 1 and x["rgb"].shape == (3, 2, 3, 8, 8)
    assert not torch.equal(x["rgb"], v["rgb"])  # different noise ...
    assert torch.equal(train._patterns["rgb"], val._patterns["rgb"])  # ... same patterns
    strong = build_dataset("synthetic:4,strength=3", SPEC, segments=3, train=True, num_classes=2)
    assert strong.strength == 3.0
    with pytest.raises(ConfigError, match="unknown option"):
        build_dataset("synthetic:4,sigma=2", SPEC, segments=3, train=True, num_classes=2)
    with pytest.raises(ConfigError, match="integer"):
        build_dataset("synthetic:many", SPEC, segments=3, train=True, num_classes=2)


def test_missing_manifest_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        build_dataset(
            "missing.csv", SPEC, segments=2, train=False, num_classes=2, base_dir=tmp_path
        )


def test_sources_say_their_flow_method() -> None:
    assert source_flow_method("syntheticav:8,flow_method=dis") == "dis"
    assert source_flow_method("syntheticav:8") is None
    assert source_flow_method("synthetic:8") is None
    assert source_flow_method("train.csv") is None
    assert source_flow_method("notinstalled:8") is None


class _Ones(DataSource):
    def open(self, arg, options, request):
        n = int(arg)
        return [
            ({m: torch.ones(request.segments, *s.shape) for m, s in request.input_spec.items()}, 0)
            for _ in range(n)
        ]


def test_a_registered_source_is_usable_from_a_config_string() -> None:
    DATA_SOURCES.register("ones", _Ones())
    try:
        ds = build_dataset("ones:3", SPEC, segments=2, train=True, num_classes=1)
        assert len(ds) == 3 and ds[0][0]["audio"].shape == (2, 1, 1, 8, 8)
    finally:
        DATA_SOURCES.unregister("ones")


def test_plugin_source_from_an_entry_point(tmp_path, monkeypatch) -> None:
    (tmp_path / "zeros_source.py").write_text(
        textwrap.dedent("""
        import torch
        from adamml.data.sources import DataSource

        class Zeros(DataSource):
            def open(self, arg, options, request):
                return [({m: torch.zeros(request.segments, *s.shape)
                          for m, s in request.input_spec.items()}, 0)] * int(arg)

        SOURCE = Zeros()
        """)
    )
    info = tmp_path / "zeros_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zeros_plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[adamml.data_sources]\nzeros = zeros_source:SOURCE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        DATA_SOURCES.reload_plugins()
        ds = build_dataset("zeros:2", SPEC, segments=1, train=False, num_classes=1)
        assert len(ds) == 2 and float(ds[1][0]["rgb"].sum()) == 0.0
        assert DATA_SOURCES.info("zeros").distribution == "zeros_plugin 0.1"
    finally:
        monkeypatch.undo()
        DATA_SOURCES.reload_plugins()
    assert "zeros" not in DATA_SOURCES


def test_cli_lists_the_sources(capsys) -> None:
    from adamml.cli import main

    assert main(["list", "sources"]) == 0
    assert {"manifest", "synthetic", "syntheticav"} <= set(capsys.readouterr().out.split())


def test_syntheticav_flow_size_sets_the_frames_flow_is_computed_on() -> None:
    """``flow_size``: flow on the frames as rendered (64 px) differs from flow on frames resized
    to 256 px (displacements in smaller pixels), keeps the input shape, is cached apart from
    it, and a bad value is a ConfigError naming the key."""
    from adamml.data.sources import build_dataset

    spec = {"flow": InputSpec((2, 10, 16, 16), "flow")}

    def flows(extra: str) -> torch.Tensor:
        ds = build_dataset(
            f"syntheticav:2,split=val,flow_method=dis{extra}",
            spec,
            train=False,
            segments=2,
            num_classes=3,
            seed=0,
        )
        return torch.stack([ds[i][0]["flow"] for i in range(len(ds))])

    big, small = flows(""), flows(",flow_size=64")
    assert big.shape == small.shape == (2, 2, 2, 10, 16, 16)
    assert small.abs().mean() < 0.6 * big.abs().mean()  # displacements in 64-px pixels
    assert torch.equal(flows(",flow_size=64"), small)  # deterministic (and cached)
    for bad in ("8", "abc", "true"):
        with pytest.raises(ConfigError, match="flow_size"):
            flows(f",flow_size={bad}")


def _same_storage(a, b, modality: str) -> bool:
    return a.inputs[modality].data_ptr() == b.inputs[modality].data_ptr()


def test_a_cached_superset_serves_only_inputs_sampled_alike() -> None:
    """RGB made beside RGB difference sits on other frames (sampling keeps RGB difference's
    5-frame stacks inside the video, as the reference does) than RGB made alone, so a cached
    RGB + RGB-difference dataset must not serve an RGB-only request: what a run trains on
    would then depend on what ran before it in the process."""
    from adamml.data.synthetic.source import clear_syntheticav_cache
    from adamml.data.transforms import sampling_of

    rgb = {"rgb": InputSpec((4, 3, 32, 32), "rgb")}
    both = {**rgb, "rgbdiff": InputSpec((4, 15, 32, 32), "rgbdiff", 5)}
    audio = {"audio": InputSpec((1, 1, 32, 32), "audio")}
    assert sampling_of(rgb) == (1, (4,)) and sampling_of(both) == (5, (4,))
    assert sampling_of(audio) == (1, (8,)) and sampling_of({**rgb, **audio}) == (1, (4,))

    def build(spec):
        return build_dataset(
            "syntheticav:6,split=val", spec, segments=4, train=False, num_classes=6
        )

    clear_syntheticav_cache()
    alone = build(rgb)[2][0]["rgb"]
    clear_syntheticav_cache()
    beside = build(both)[2][0]["rgb"]
    assert not torch.equal(alone, beside)  # the sampled frames moved
    assert torch.equal(build(rgb)[2][0]["rgb"], alone)  # the superset in the cache: not used
    diff = build({"rgbdiff": both["rgbdiff"]})  # sampled as in the superset: served by it
    assert _same_storage(diff, build(both), "rgbdiff")
    clear_syntheticav_cache()
    assert torch.equal(build({"rgbdiff": both["rgbdiff"]})[2][0]["rgbdiff"], diff[2][0]["rgbdiff"])
    # audio's windows are centred on the segments of the frame inputs made with it
    clear_syntheticav_cache()
    alone = build(audio)[2][0]["audio"]
    clear_syntheticav_cache()
    build({**rgb, **audio})
    assert torch.equal(build(audio)[2][0]["audio"], alone)
    assert _same_storage(build(rgb), build({**rgb, **audio}), "rgb")  # sampled alike
    # a run's pre-training stage asks for its modality sampled as its model samples
    together = build({**rgb, **audio})[2][0]["audio"]
    clear_syntheticav_cache()
    like = build_dataset(
        "syntheticav:6,split=val",
        audio,
        segments=4,
        train=False,
        num_classes=6,
        sample_like={**rgb, **audio},
    )
    assert torch.equal(like[2][0]["audio"], together) and not torch.equal(together, alone)
    clear_syntheticav_cache()


def test_the_cache_makes_only_the_inputs_it_lacks_and_they_equal_inputs_made_together() -> None:
    """An RGB + RGB-difference run after an RGB-difference run of the same process reuses the
    RGB difference (the flow of a table's flow rows is made once, not once per row) and makes
    only its RGB; what it trains on equals what a fresh process makes."""
    from adamml.data.synthetic.source import clear_syntheticav_cache

    rgb = {"rgb": InputSpec((4, 3, 32, 32), "rgb")}
    diff = {"rgbdiff": InputSpec((4, 15, 32, 32), "rgbdiff", 5)}

    def build(spec, **kw):
        return build_dataset(
            "syntheticav:5,split=train", spec, segments=3, train=True, num_classes=4, **kw
        )

    clear_syntheticav_cache()
    fresh = build({**rgb, **diff})
    fresh_items = [fresh[i] for i in range(len(fresh))]
    clear_syntheticav_cache()
    first = build(diff, sample_like={**rgb, **diff})  # a pre-training stage of the run
    together = build({**rgb, **diff})
    assert _same_storage(together, first, "rgbdiff")
    for (x, y), (fx, fy) in zip([together[i] for i in range(len(together))], fresh_items):
        assert y == fy and all(torch.equal(x[m], fx[m]) for m in ("rgb", "rgbdiff"))
    assert torch.equal(together.evidence, fresh.evidence)
    # datasets served from one cache entry keep their own epoch
    together.set_epoch(3)
    assert build({**rgb, **diff}).epoch == 0
    clear_syntheticav_cache()


def test_a_disk_cache_serves_other_processes_what_one_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``ADAMML_SYNTHETIC_CACHE`` set, an input one process made is read by another (here:
    the same process after forgetting its memory) instead of made again, equal to it; a torn
    file is made again, with a warning."""
    from adamml.data.synthetic import dataset as synthetic_dataset
    from adamml.data.synthetic.source import DISK_CACHE_ENV, clear_syntheticav_cache

    rgb = {"rgb": InputSpec((4, 3, 32, 32), "rgb")}
    audio = {"audio": InputSpec((1, 1, 32, 32), "audio")}

    def build(spec):
        return build_dataset(
            "syntheticav:4,split=val", spec, segments=3, train=False, num_classes=4
        )

    clear_syntheticav_cache()
    made = build({**rgb, **audio})
    monkeypatch.setenv(DISK_CACHE_ENV, str(tmp_path / "cache"))
    clear_syntheticav_cache()
    first = build(rgb)  # made, and written
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2  # labels and RGB
    calls = []
    real = synthetic_dataset.SyntheticTensorDataset._featurise
    monkeypatch.setattr(
        synthetic_dataset.SyntheticTensorDataset,
        "_featurise",
        lambda self, spec, *a: calls.append(sorted(spec)) or real(self, spec, *a),
    )
    clear_syntheticav_cache()
    both = build({**rgb, **audio})  # RGB read from disk, audio made
    assert calls == [["audio"]]
    assert torch.equal(both.inputs["rgb"], first.inputs["rgb"])
    for m in ("rgb", "audio"):
        assert torch.equal(both.inputs[m], made.inputs[m])
    assert torch.equal(both.labels, made.labels) and torch.equal(both.evidence, made.evidence)
    for path in (tmp_path / "cache").glob("*.pt"):
        path.write_bytes(b"torn")
    clear_syntheticav_cache()
    with pytest.warns(UserWarning, match="unreadable syntheticav cache file"):
        again = build(rgb)
    assert torch.equal(again.inputs["rgb"], made.inputs["rgb"])
    clear_syntheticav_cache()
