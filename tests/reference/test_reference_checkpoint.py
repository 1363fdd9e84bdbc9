"""Reference-layout round trip: a state dict with exactly the authors' keys loads into adamml."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import adamml
from adamml.errors import CheckpointError
from adamml.reference import to_reference_state_dict
from adamml.reference_keys import read_key_table

KEYS = Path(__file__).resolve().parents[1] / "fixtures" / "official-checkpoint-keys"
CASES = [("adamml_rgb_audio", "rgb_sound.tsv"), ("adamml_rgb_flow_rgbdiff", "rgb_flow_rgbdiff.tsv")]


def _tables(table: dict[str, tuple[int, ...]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key in table:
        for prefix in ("main_net.nets.", "policy_net.joint_net.nets."):
            if key.startswith(prefix):
                head = prefix + key[len(prefix) :].split(".", 1)[0] + "."
                out.setdefault(head, []).append(key[len(head) :])
    return out


def _randomise(model: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(torch.randn(buf.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                buf.copy_(torch.rand(buf.shape, generator=g) + 0.5)
        model.fusion.weight.fill_(0.3)


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def exported(request):
    name, tsv = request.param
    table = read_key_table(KEYS / tsv)
    torch.manual_seed(0)
    source = adamml.create_model(name, num_classes=31).eval()
    _randomise(source)
    sd = to_reference_state_dict(source, _tables(table), prefix="module.")
    return name, table, source, sd


def test_export_has_exactly_the_reference_layout(exported) -> None:
    _, table, _, sd = exported
    assert len(sd) == len(table)
    assert {k[len("module.") :] for k in sd} == set(table)
    for k, v in sd.items():
        assert tuple(v.shape) == table[k[len("module.") :]], k


def test_round_trip_gives_the_same_outputs(exported) -> None:
    name, _, source, sd = exported
    torch.manual_seed(123)  # a differently initialised target
    loaded = adamml.load_reference_checkpoint({"state_dict": sd, "temperature": 2.452}, name=name)
    assert float(loaded.policy.gate.tau) == pytest.approx(2.452)
    x = {m: torch.randn(1, 2, *s.shape) for m, s in source.input_spec.items()}
    d = torch.tensor([[[1.0, 1.0], [1.0, 0.0]]])
    with torch.no_grad():
        a, b = source(x, decisions=d), loaded(x, decisions=d)
    assert (a.policy_logits - b.policy_logits).abs().max() < 1e-4
    assert (a.logits - b.logits).abs().max() < 1e-4
    assert torch.equal(a.decisions, b.decisions)


def test_mismatch_lists_the_keys(exported) -> None:
    name, _, _, sd = exported
    broken = {k: v for k, v in sd.items() if "lstm.weight_hh" not in k}
    broken["module.main_net.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="extra.weight.*policy.lstm.weight_hh"):
        adamml.load_reference_checkpoint(broken, name=name)


def test_unreadable_file_is_a_checkpoint_error(tmp_path) -> None:
    bad = tmp_path / "ckpt.pth.tar"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="ckpt.pth.tar"):
        adamml.load_reference_checkpoint(bad)
