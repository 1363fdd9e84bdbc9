"""examples/own_model_gate.py: a per-sample GumbelGate in a model that is not AdaMML learns to
run its expensive branch where the label needs it and to skip it elsewhere."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "own_model_gate.py"
# what the test asks on every seed. Measured (600 steps, seeds 0-39): use 100 % where needed,
# at most 0.2 % where not, accuracy 99.93-100 % gated and 99.88-100 % always-run (gap <= 0.1
# point, never against the gated model)
MIN_USE_NEED, MAX_USE_NO_NEED, ACCURACY_MARGIN = 80.0, 30.0, 5.0


def _example():
    """The script as a module, loaded from its file (no ``sys.path`` edits)."""
    name = "own_model_gate"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_imports_only_from_adamml() -> None:
    text = SCRIPT.read_text()
    assert "sys.path" not in text and "from adamml import" in text
    readme = (SCRIPT.parent / "README.md").read_text()
    assert "own_model_gate.py" in readme


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gate_skips_where_the_expensive_branch_does_not_help(seed: int) -> None:
    example = _example()
    gated = example.run(seed)
    always = example.run(seed, always_run=True)
    assert gated["use_need"] >= MIN_USE_NEED, gated
    assert gated["use_no_need"] <= MAX_USE_NO_NEED, gated
    assert gated["accuracy"] >= always["accuracy"] - ACCURACY_MARGIN, (gated, always)
    assert always["skipped"] == 0.0 and gated["relative_cost"] < 75.0


def test_main_prints_both_models(capsys: pytest.CaptureFixture[str]) -> None:
    result = _example().main(["--seed", "3", "--steps", "30", "--warmup", "10"])
    out = capsys.readouterr().out
    assert "gated" in out and "always-run" in out and "skipped" in out
    assert set(result) == {"gated", "always_run"}
    assert set(result["gated"]) == {
        "accuracy",
        "use_need",
        "use_no_need",
        "skipped",
        "relative_cost",
    }
