from __future__ import annotations

import sys
import textwrap
import warnings

import pytest

import adamml
from adamml._registry import PluginWarning, Registry
from adamml.errors import DuplicateNameError, UnknownModalityError, UnknownNameError


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(UnknownModalityError, match=r"did you mean 'rgb'\? Known: audio, flow"):
        adamml.get_modality("rbg")


def test_unknown_error_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        adamml.get_modality("nothing-like-it")


def test_alias_resolves() -> None:
    assert adamml.get_modality("sound") is adamml.get_modality("audio")


def test_duplicate_raises_unless_override() -> None:
    reg: Registry[int] = Registry("thing", "adamml.test-things", UnknownNameError)
    reg.register("a", 1)
    with pytest.raises(DuplicateNameError, match="'a' is already registered"):
        reg.register("a", 2)
    reg.register("a", 3, override=True)
    assert reg.get("a") == 3


def _write_plugin(tmp_path, dist: str, module: str, body: str, entry: str) -> None:
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(body))
    info = tmp_path / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[adamml.modalities]\n{entry}\n")


def test_plugin_modality_is_discovered(tmp_path, monkeypatch) -> None:
    _write_plugin(
        tmp_path,
        "depth_plugin",
        "depth_plugin_mod",
        """
        from adamml.modalities import Modality
        DEPTH = Modality("depth", channels=1, frames=8, size=(224, 224))
        """,
        "depth = depth_plugin_mod:DEPTH",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = adamml.MODALITIES
    try:
        reg.reload_plugins()
        assert "depth" in reg.list()
        assert adamml.get_modality("depth").channels == 1
        # the plugin modality builds and runs a model like any built-in
        import torch

        mods = ("rgb", "depth")
        model = adamml.AdaMML(
            policy=adamml.AllPolicy(mods),
            router=adamml.ModalityRouter(
                {
                    m: adamml.create_backbone(
                        "tiny_tsn",
                        modality=adamml.get_modality(m).replace(frames=4, size=(32, 32)),
                        num_classes=3,
                    )
                    for m in mods
                }
            ),
            fusion=adamml.LearnableLateFusion(mods),
            modality_specs={
                m: adamml.get_modality(m).replace(frames=4, size=(32, 32)) for m in mods
            },
        ).eval()
        assert model.input_spec["depth"].shape == (4, 1, 32, 32)
        x = {m: torch.randn(2, 3, *spec.shape) for m, spec in model.input_spec.items()}
        assert model(x).logits.shape == (2, 3)
        names = {(p.name, p.distribution) for p in adamml.list_plugins("adamml.modalities")}
        assert ("depth", "depth_plugin 0.1") in names
    finally:
        monkeypatch.undo()
        reg.reload_plugins()
    assert "depth" not in reg.list()


def test_broken_plugin_warns_and_library_keeps_working(tmp_path, monkeypatch) -> None:
    _write_plugin(
        tmp_path,
        "broken_plugin",
        "broken_plugin_mod",
        "raise RuntimeError('boom at import')\n",
        "broken = broken_plugin_mod:THING",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = adamml.MODALITIES
    try:
        with pytest.warns(PluginWarning, match="broken_plugin 0.1.*boom at import"):
            reg.reload_plugins()
        assert adamml.get_modality("rgb").channels == 3
    finally:
        monkeypatch.undo()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reg.reload_plugins()


def test_autoload_can_be_disabled(tmp_path, monkeypatch) -> None:
    _write_plugin(
        tmp_path,
        "off_plugin",
        "off_plugin_mod",
        """
        from adamml.modalities import Modality
        OFF = Modality("offmod", channels=1, frames=1, size=(8, 8))
        """,
        "offmod = off_plugin_mod:OFF",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ADAMML_DISABLE_PLUGIN_AUTOLOAD", "1")
    reg = adamml.MODALITIES
    try:
        reg.reload_plugins()
        assert "offmod" not in reg.list()
    finally:
        monkeypatch.undo()
        reg.reload_plugins()


def test_registry_module_does_not_import_the_registries() -> None:
    """``_registry`` defines the type, ``registries`` the instances: no import cycle."""
    import ast
    import inspect

    import adamml._registry as module

    tree = ast.parse(inspect.getsource(module))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    imported |= {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert "registries" not in imported and not any("registries" in m for m in imported)
    assert set(adamml.registries.REGISTRIES) == {
        "adamml.modalities",
        "adamml.backbones",
        "adamml.policies",
        "adamml.fusions",
        "adamml.models",
        "adamml.data_sources",
    }


def test_a_model_entry_point_naming_a_recipe_gets_its_test_twin(tmp_path, monkeypatch) -> None:
    (tmp_path / "twin_plugin_mod.py").write_text(
        "from adamml.zoo import ModelRecipe\n"
        "RECIPE = ModelRecipe(('rgb', 'audio'), description='a plugin model')\n"
    )
    info = tmp_path / "twin_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: twin_plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[adamml.models]\nplugin_adamml = twin_plugin_mod:RECIPE\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = adamml.MODELS
    try:
        reg.reload_plugins()
        assert {"plugin_adamml", "test_plugin_adamml"} <= set(reg.list())
        model = adamml.create_model("test_plugin_adamml", num_classes=3)
        assert model.modalities == ("rgb", "audio")
        sources = {p.name: p.source for p in adamml.list_plugins() if "plugin_adamml" in p.name}
        assert sources == {"plugin_adamml": "plugin", "test_plugin_adamml": "plugin"}
    finally:
        monkeypatch.delitem(sys.modules, "twin_plugin_mod", raising=False)
        monkeypatch.undo()
        reg.reload_plugins()
    assert "plugin_adamml" not in reg.list()
