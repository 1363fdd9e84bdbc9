"""Policies that do not look at the content: random selection and all-on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..registries import POLICIES
from ..types import PolicyOutput
from .base import batch_segments, canonical_modalities

__all__ = ["RandomPolicy", "AllPolicy"]

_PHASES = ("both", "train", "test")


class _ContentFreePolicy(nn.Module):
    """Shared by policies that only read B, S and the device from the views."""

    needs_views: bool = False
    takes_feature_extractors: bool = False
    stream_mode = "independent"  # every segment is decided on its own

    def __init__(self, modalities: Sequence[str]) -> None:
        super().__init__()
        self.modalities = canonical_modalities(modalities)

    def forward(
        self,
        views: Mapping[str, Any] | None = None,
        *,
        batch_size: int | None = None,
        num_segments: int | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> PolicyOutput:
        """Decisions for every segment of every video, without looking at the content.

        Args:
            views: any tensors shaped ``(B, S, ...)`` (only their size and device are read).
            batch_size: B, overriding the views.
            num_segments: S, overriding the views.
            device: the decisions' device, overriding the views'.
            generator: a CPU generator for policies that draw (ignored by the others).

        Returns:
            ``PolicyOutput(decisions (B, S, M) of 0./1., logits None)``.
        """
        if batch_size is not None and num_segments is not None:
            b, s, dev = int(batch_size), int(num_segments), torch.device(device or "cpu")
        else:
            b, s, dev = batch_segments(views or {}, self.modalities)
            b = b if batch_size is None else int(batch_size)
            s = s if num_segments is None else int(num_segments)
            dev = dev if device is None else torch.device(device)
        return PolicyOutput(self.decide(b, s, dev, generator), None)

    def decide(
        self, b: int, s: int, device: torch.device, generator: torch.Generator | None
    ) -> Tensor:
        """``(B, S, M)`` 0/1 decisions on ``device``."""
        return torch.ones(b, s, len(self.modalities), device=device)

    def extra_repr(self) -> str:
        return f"modalities={self.modalities}"


@POLICIES.register("all", aliases=("all_on",))
class AllPolicy(_ContentFreePolicy):
    """Use every modality on every segment: the weighted-fusion baseline (AdaMML Table 1).

    Args:
        modalities: modality names, in the order of the decisions' M axis.

    Shape:
        ``views`` (only B, S and the device are read) -> ``PolicyOutput(ones (B, S, M), None)``.

    Raises:
        ShapeError: if ``(B, S)`` can be read neither from the views nor from the keywords.

    Example:
        >>> import torch
        >>> AllPolicy(("rgb", "audio"))({"rgb": torch.zeros(2, 3, 8, 3, 4, 4)}).decisions.shape
        torch.Size([2, 3, 2])
    """


@POLICIES.register("random", aliases=("rng",))
class RandomPolicy(_ContentFreePolicy):
    """Keep each modality with probability p, independently per video, segment and modality
    (AdaMML Table 8; reference §2 "Random-policy baselines").

    ``when`` says in which phase the choice is random; outside it every modality is kept:

    | ``when`` | training | evaluation | paper |
    | --- | --- | --- | --- |
    | ``"both"`` | random | random | Random (Train+Test) |
    | ``"train"`` | random | all | Random (Train) |
    | ``"test"`` | all | random | Random (Test) |

    The reference draws ``rand > threshold`` (keep probability ``1 - threshold``); here ``p`` is
    the keep probability itself. Noise is drawn on the CPU and moved to the views' device, so a
    seed gives the same decisions on every device.

    Randomness: with ``seed=None`` draws come from torch's global RNG. With a seed, training
    draws come from a generator seeded once (reproducible runs, new decisions each call), and
    every evaluation call restarts from the seed, so evaluating the same batch shape twice gives
    the same decisions. A ``generator`` passed to ``forward`` overrides both.

    Args:
        modalities: modality names, in the order of the decisions' M axis.
        p: keep probability in [0, 1], one for all or a dict by modality.
        when: ``"both"``, ``"train"`` or ``"test"``.
        seed: optional seed (see above).

    Shape:
        ``views`` (only B, S and the device are read) ->
        ``PolicyOutput(decisions (B, S, M), None)``.

    Raises:
        ConfigError: for p outside [0, 1], a p dict missing a modality, or an unknown ``when``.

    Example:
        >>> import torch
        >>> policy = RandomPolicy(("rgb", "audio"), p={"rgb": 0.25, "audio": 1.0}, seed=0)
        >>> d = policy.eval()({"rgb": torch.zeros(4, 10, 1)}).decisions
        >>> d[..., 1].min().item(), d.shape
        (1.0, torch.Size([4, 10, 2]))
    """

    def __init__(
        self,
        modalities: Sequence[str],
        p: float | Mapping[str, float] = 0.5,
        *,
        when: str = "both",
        seed: int | None = None,
    ) -> None:
        super().__init__(modalities)
        if when not in _PHASES:
            raise ConfigError(f"RandomPolicy when must be one of {_PHASES}; got {when!r}")
        if isinstance(p, Mapping):
            given = {canonical_modalities((k,))[0]: v for k, v in p.items()}
            missing = [m for m in self.modalities if m not in given]
            if missing:
                raise ConfigError(
                    f"RandomPolicy p has no value for {missing}; got keys {sorted(p)}"
                )
            probs = [given[m] for m in self.modalities]
        else:
            probs = [p] * len(self.modalities)
        for m, q in zip(self.modalities, probs):
            if not isinstance(q, (int, float)) or not 0.0 <= float(q) <= 1.0:
                raise ConfigError(f"RandomPolicy p for {m!r} must be in [0, 1]; got {q!r}")
        self.p = tuple(float(q) for q in probs)
        self.when = when
        self.seed = seed
        self._train_generator: torch.Generator | None = None
        if seed is not None:
            self._train_generator = torch.Generator().manual_seed(int(seed))

    @property
    def active(self) -> bool:
        """Whether decisions are random in the current mode (``training`` and ``when``)."""
        return self.when == "both" or self.when == ("train" if self.training else "test")

    def _generator(self) -> torch.Generator | None:
        if self.seed is None:
            return None
        if self.training:
            return self._train_generator
        return torch.Generator().manual_seed(int(self.seed))

    def stream_generator(self) -> torch.Generator | None:
        """The generator a new stream (`adamml.AdaMML.stream`) draws every segment from: with a
        seed in evaluation a fresh one seeded with it (each call of ``forward`` restarts from
        the seed, which would give every segment the first segment's draws), in training the
        training generator, without a seed ``None`` (torch's global RNG)."""
        if self.seed is None:
            return None
        return self._generator()

    def decide(
        self, b: int, s: int, device: torch.device, generator: torch.Generator | None
    ) -> Tensor:
        """Random decisions in the active phase (all on outside it), drawn on the CPU."""
        if not self.active:
            return super().decide(b, s, device, generator)
        gen = generator if generator is not None else self._generator()
        u = torch.rand(b, s, len(self.modalities), generator=gen)
        return (u < torch.tensor(self.p)).float().to(device)

    def extra_repr(self) -> str:
        return f"modalities={self.modalities}, p={self.p}, when={self.when!r}, seed={self.seed}"
