"""Router test fixtures."""

from __future__ import annotations

import pytest
from torch import nn


@pytest.fixture
def hook_log():
    """Attach forward hooks that record each call's input batch size."""

    def attach(router: nn.Module) -> dict[str, list[int]]:
        log: dict[str, list[int]] = {m: [] for m in router.modalities}
        for m, net in router.backbones.items():
            net.register_forward_hook(lambda mod, args, out, m=m: log[m].append(args[0].shape[0]))
        return log

    return attach
