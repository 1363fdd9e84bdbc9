"""Separability of SyntheticAV (slow): tiny classifiers on single segments, and cheap detectors.

Run with ``pytest tests/data_synthetic/test_separability.py -m slow -s`` to see the numbers.
"""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adamml.data.synthetic import SyntheticAV
from adamml.modalities import InputSpec

SPEC = {"rgb": InputSpec((4, 3, 32, 32), "rgb"), "audio": InputSpec((1, 1, 32, 32), "audio")}


def _net(in_ch: int, out: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_ch, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, out),
    )


def _fit(x: torch.Tensor, y: torch.Tensor, out: int, steps: int = 300) -> nn.Module:
    torch.manual_seed(0)
    net = _net(x.shape[1], out)
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    for _ in range(steps):
        i = torch.randint(len(x), (64,))
        loss = F.cross_entropy(net(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def _acc(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (net(x).argmax(1) == y).float().mean().item() * 100


def _rgb_view(x: torch.Tensor, policy: bool) -> torch.Tensor:
    """(n, T, 3, 32, 32) -> frames stacked as channels; the policy view: frames 0, 2 at 24x24."""
    if policy:
        x = x[:, ::2]
        x = F.interpolate(
            x.flatten(0, 1), size=(24, 24), mode="bilinear", align_corners=False
        ).unflatten(0, x.shape[:2])
    return x.flatten(1, 2)


@pytest.mark.slow
def test_segments_are_separable_where_evidence_is() -> None:
    t0 = time.time()
    train = SyntheticAV(600, seed=0).tensors(SPEC, segments=5, train=True)
    val = SyntheticAV(200, seed=0, split="val").tensors(SPEC, segments=10, train=False)
    build = time.time() - t0
    print(f"\nfeaturising 600 train (x10 clips) + 200 val videos: {build:.1f} s")

    def flat(ds):  # every stored clip as one example
        v, p = ds.labels.shape[0], ds.evidence.shape[1]
        rgb = ds.inputs["rgb"].float().flatten(0, 1)
        aud = ds.inputs["audio"].flatten(0, 1).flatten(1, 2)
        lab = ds.labels[:, None].expand(v, p).reshape(-1)
        ev = ds.evidence.flatten(0, 1) > 0.5
        return rgb, aud, lab, ev

    r_tr, a_tr, y_tr, e_tr = flat(train)
    r_va, a_va, y_va, e_va = flat(val)
    results = {}
    rgb_net = _fit(_rgb_view(r_tr[e_tr[:, 0]], False), y_tr[e_tr[:, 0]], 6)
    results["rgb | evidence"] = _acc(rgb_net, _rgb_view(r_va[e_va[:, 0]], False), y_va[e_va[:, 0]])
    results["rgb | none"] = _acc(rgb_net, _rgb_view(r_va[~e_va[:, 0]], False), y_va[~e_va[:, 0]])
    aud_net = _fit(a_tr[e_tr[:, 1]], y_tr[e_tr[:, 1]], 6)
    results["audio | evidence"] = _acc(aud_net, a_va[e_va[:, 1]], y_va[e_va[:, 1]])
    results["audio | none"] = _acc(aud_net, a_va[~e_va[:, 1]], y_va[~e_va[:, 1]])
    det_rgb = _fit(_rgb_view(r_tr, True), e_tr[:, 0].long(), 2, steps=200)
    results["rgb evidence detector (24x24, 2 frames)"] = _acc(
        det_rgb, _rgb_view(r_va, True), e_va[:, 0].long()
    )
    det_aud = _fit(a_tr, e_tr[:, 1].long(), 2, steps=200)
    results["audio evidence detector (32x32)"] = _acc(det_aud, a_va, e_va[:, 1].long())
    print(f"total with training: {time.time() - t0:.1f} s")
    for k, v in results.items():
        print(f"  {k:42s} {v:5.1f} %")
    assert results["rgb | evidence"] > 85 and results["audio | evidence"] > 90
    assert results["rgb | none"] < 30 and results["audio | none"] < 30  # chance is 16.7
    assert results["rgb evidence detector (24x24, 2 frames)"] > 95
    assert results["audio evidence detector (32x32)"] > 95
