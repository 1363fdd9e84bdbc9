"""The CLI and plugins: ``adamml list plugins`` and a checkpoint whose plugin is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from plugin_helpers import installed, reload_all_plugins, write_distribution

import adamml
from adamml.cli import main


def test_list_plugins_shows_each_component_with_its_distribution_and_version(tmp_path) -> None:
    site = write_distribution(tmp_path / "site")
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "adamml", "list", "plugins"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.strip().splitlines()]
    assert rows[0] == ["DISTRIBUTION", "VERSION", "KIND", "NAME", "OBJECT"]
    assert rows[1:-1] == [
        ["adamml-depth", "0.1", "backbone", "depth_net", "adamml_depth_plugin:DepthNet"],
        ["adamml-depth", "0.1", "modality", "depth", "adamml_depth_plugin:DEPTH"],
        ["adamml-depth", "0.1", "model", "depth_adamml", "adamml_depth_plugin:DEPTH_ADAMML"],
        [
            "adamml-depth",
            "0.1",
            "model",
            "test_depth_adamml",
            "adamml.zoo:recipe_factory.<test_depth_adamml>",
        ],
        ["adamml-depth", "0.1", "policy", "mean_score", "adamml_depth_plugin:MeanScorePolicy"],
    ]
    assert proc.stdout.strip().splitlines()[-1] == "5 components from 1 distribution"
    # the columns line up: every row's NAME starts where the header's does
    lines = proc.stdout.splitlines()
    column = lines[0].index("NAME")
    assert all(line[column - 2 : column] == "  " and line[column] != " " for line in lines[:-1])


def test_list_plugins_without_any_says_so(capsys, monkeypatch) -> None:
    assert adamml.list_plugins() == []  # this environment installs none
    assert main(["list", "plugins"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("no plugins installed: no installed distribution declares entry points")
    assert "adamml.modalities" in out
    monkeypatch.setenv("ADAMML_DISABLE_PLUGIN_AUTOLOAD", "1")
    try:
        reload_all_plugins()
        assert main(["list", "plugins"]) == 0
        assert "ADAMML_DISABLE_PLUGIN_AUTOLOAD is set" in capsys.readouterr().out
    finally:
        monkeypatch.undo()
        reload_all_plugins()


def test_eval_of_a_checkpoint_without_its_plugin_is_one_line_naming_it(
    tmp_path: Path, capsys
) -> None:
    from adamml.engine.checkpoint import save_checkpoint
    from adamml.engine.instantiate import plugin_record

    with installed(write_distribution(tmp_path / "site")):
        model = adamml.create_model("test_depth_adamml", num_classes=3)
        state = {
            "model_name": "test_depth_adamml",
            "num_classes": 3,
            "model": model.state_dict(),
            "plugins": plugin_record(model, "test_depth_adamml"),
        }
    path = save_checkpoint(state, tmp_path, "best.pt", update_last=False)
    code = main(["eval", "--checkpoint", str(path), "--data", "synthetic:2"])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "modality 'depth', backbone 'depth_net' and policy 'mean_score' come from" in err
    assert "the plugin distribution adamml-depth 0.1, which is not installed here" in err
