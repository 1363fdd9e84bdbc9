"""Shared fixtures: seeded RNGs, CPU, offline hubs."""

from __future__ import annotations

import os
import random

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

# Under pytest-xdist (`make test` runs two workers) every worker, and every process a test
# starts, gets one thread: two workers with two threads each on a 2-core machine would fight.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1 if _WORKERS > 1 else max(1, min(2, torch.get_num_threads())))


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
