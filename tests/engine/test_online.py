"""`evaluate_stream` and `sweep_early_exit`: the stream over batches equals `evaluate`; the
sweep's rows are what a real early exit gives; exited segments are never computed."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

import adamml
from adamml.engine.distributed import DistInfo
from adamml.engine.evaluate import evaluate
from adamml.engine.online import evaluate_stream, sweep_early_exit
from adamml.errors import ConfigError
from adamml.streaming import EarlyExit, confidence

INFO = DistInfo()


def _model(name: str = "test_adamml_rgb_audio") -> nn.Module:
    """A tiny AdaMML whose policy skips some segments (head biases split the use - skip logits
    of the test videos in the middle) and whose predictions are sharp."""
    torch.manual_seed(0)
    model = adamml.create_model(name, num_classes=4).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in [*model.policy.lstm.parameters(), *model.policy.heads.parameters()]:
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        for m in model.modalities:
            model.router.backbone(m).fc.weight.mul_(20)
        z = torch.cat([model(inputs).policy_logits for _, inputs, _ in _loader(model)])
        for k, head in enumerate(model.policy.heads):
            d = (z[..., k, 1] - z[..., k, 0]).flatten().sort().values
            i = len(d) // 4 + int((d[len(d) // 4 + 1 :] - d[len(d) // 4 : -1]).argmax())
            head.bias[1] -= (d[i] + d[i + 1]) / 2  # the widest gap above the lowest quarter
    return model


def _loader(model: nn.Module, batches: int = 2, b: int = 3, s: int = 5) -> list:
    gen = torch.Generator().manual_seed(2)
    out = []
    for i in range(batches):
        x = {m: torch.randn(b, s, *v.shape, generator=gen) for m, v in model.input_spec.items()}
        out.append((torch.arange(i * b, (i + 1) * b), x, torch.randint(0, 4, (b,), generator=gen)))
    return out


def test_the_stream_without_exit_is_evaluate() -> None:
    model = _model()
    loader = _loader(model)
    batch = evaluate(model, loader, INFO)
    online = evaluate_stream(model, loader, INFO)
    assert 0 < float(batch.decisions.mean()) < 1
    assert torch.equal(online.result.decisions, batch.decisions)
    torch.testing.assert_close(online.result.logits, batch.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(online.result.gflops, batch.gflops, rtol=1e-6, atol=1e-9)
    assert online.segments_used.tolist() == [5] * 6
    torch.testing.assert_close(online.running_logits[:, -1], online.result.logits)


@pytest.mark.parametrize("metric", ["prob", "margin"])
def test_sweep_rows_are_real_early_exits(metric: str) -> None:
    model = _model()
    loader = _loader(model)
    online = evaluate_stream(model, loader, INFO)
    sure = confidence(online.running_logits[:, 1:].reshape(-1, 4), metric).sort().values
    thresholds = [float(sure[len(sure) // 3] + sure[len(sure) // 3 + 1]) / 2]
    thresholds.append(float(sure[2 * len(sure) // 3] + sure[2 * len(sure) // 3 + 1]) / 2)
    rows = sweep_early_exit(online, thresholds, metric=metric, min_segments=2)
    assert rows[-1]["threshold"] is None and rows[-1]["segments_used"] == 5
    for threshold, row in zip(thresholds, rows):
        rule = EarlyExit(threshold, metric, min_segments=2)
        run = evaluate_stream(model, loader, INFO, early_exit=rule)
        used = run.segments_used.double()
        assert row["segments_used"] == pytest.approx(float(used.mean()))
        assert row["gflops"] == pytest.approx(float(run.result.gflops.mean()))
        top1 = float((run.result.logits.argmax(1) == run.result.target).double().mean()) * 100
        assert row["top1"] == pytest.approx(top1)
        assert int(used.min()) >= 2 and float(used.mean()) < 5
    with pytest.raises(ConfigError, match="without early exit"):
        sweep_early_exit(run, [0.5])


class Source:
    """Whole-video on-demand input that records the (video, segment) pairs computed."""

    def __init__(self, x: Tensor) -> None:
        self.x, self.shape, self.asked = x, tuple(x.shape), []

    def gather(self, b: Tensor, s: Tensor) -> Tensor:
        self.asked += list(zip(b.tolist(), s.tolist()))
        return self.x[b, s]


def test_segments_after_an_exit_are_never_computed() -> None:
    """On-demand flow (recognition only; the policy looks at RGB difference): asked only for
    the selected segments before the exit, although the policy would select the last one."""
    model = _model("test_adamml_rgb_flow_rgbdiff")
    index, x, target = _loader(model, batches=1)[0]
    with torch.no_grad():
        assert bool((model(x).decisions[:, 4, 1] > 0.5).all())  # flow on the last segment
    source = Source(x["flow"])
    run = evaluate_stream(
        model, [(index, {**x, "flow": source}, target)], INFO, early_exit=EarlyExit(0.0, "prob", 4)
    )
    assert run.segments_used.tolist() == [4, 4, 4]
    want = {(b, s) for b in range(3) for s in range(4) if run.result.decisions[b, s, 1] > 0.5}
    assert set(source.asked) == want and 0 < len(want) < 12
    assert float(run.result.decisions[:, 4].abs().sum()) == 0.0
