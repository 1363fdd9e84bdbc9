"""The inference fast path of frame backbones: folded BatchNorm, channels_last, chunks, precision.

In evaluation without autograd a [`FrameBackbone`][adamml.backbones.base.FrameBackbone] runs a
cached *inference copy* of itself instead of itself:

```
weights ──(first eval call, or after they change)──► copy ─► fold BatchNorm into the convs
                                                           ─► fuse their activations (CPU)
                                                           ─► channels_last (4-d weights)
                                                           ─► cast to the autocast dtype
                                                           ─► pack weights per input shape (CPU)
                                                           ─► torch.compile (optional)
x (N, T, C, H, W) ──► chunks of n segments ──► copy(chunk) ──► concatenated (N, K | D)
```

- **BatchNorm folding**: in eval a BatchNorm is an affine map, so it is merged into the weights
  of the convolution that feeds it; timm's ``BatchNormAct2d`` keeps its activation. The folded
  copy is checked against the original on the first chunk and discarded if they differ.
- **Activation fusion** (``fuse_act``, on by default; CPU, float32 and bfloat16): a folded
  norm's activation (timm's ``BatchNormAct2d``: ReLU, ReLU6, SiLU) is applied by oneDNN inside
  the convolution's kernel instead of as a separate pass. In bfloat16 PyTorch's element-wise
  ReLU6 ran at a third of its float32 speed per element and took half of the policy's time:
  fused, the policy ran 1.4-1.6x faster. In float32 it gave 1.03-1.09x at batch 8 and
  0.96-1.05x at batch 1 (`benchmarks/policy_levers.py`). The same option turns each plain timm
  ResNet block into a `ResidualConvAct`: its ReLUs and its residual add + ReLU inside the
  convolutions (TSN ResNet-50: 1.29x in bfloat16, 1.05x in float32 on an AMX Xeon).
- **Packed weights** (``pack_weights``, on with ``fuse_act``): oneDNN reorders a plain weight
  into its blocked layout at every call; the fused modules keep it packed per input shape.
- **channels_last**: oneDNN's (CPU) and cuDNN's fastest convolutions take NHWC.
- **Chunks**: on a CPU, a batch whose largest activation outgrows the caches runs far below the
  matrix peak (TSN ResNet-50: 40 % of it on 10 segments at once, 55 % one segment at a time), so
  the segments are run in chunks whose largest activation fits ``chunk_mb``
  (`benchmarks/chunking.py` chose the default).
- **Precision**: under ``torch.autocast`` the copy holds its weights in the autocast dtype (bf16
  or fp16), cast once instead of at every call.

The copy lives outside the module tree (not in ``state_dict``, ``parameters`` or ``.to``); it is
rebuilt when any weight or buffer changes (their version counters and storage) and dropped by
``train()``. Outputs equal the plain eval forward up to floating-point rounding.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = [
    "InferenceOptions",
    "ConvAct",
    "ResidualConvAct",
    "FastPath",
    "fold_batchnorm",
    "largest_activation_bytes",
    "stage_activation_bytes",
    "stage_chunk_sizes",
    "DEFAULT_CHUNK_MB",
    "plain_forward",
    "fast_path_allowed",
]

_PLAIN = threading.local()
# (architecture, input shape) -> bytes of the largest float32 activation of one segment
_ACTIVATION_BYTES: dict[tuple[Any, ...], int] = {}
# (architecture, input shape) -> per plan entry (largest, output) float32 bytes of one segment
_STAGE_BYTES: dict[tuple[Any, ...], list[tuple[int, int]]] = {}


@contextlib.contextmanager
def plain_forward() -> Iterator[None]:
    """Run every frame backbone's plain forward inside the block (FLOP counting measures the
    operations of the model itself, not the fast path's one-off probes)."""
    depth = getattr(_PLAIN, "depth", 0)
    _PLAIN.depth = depth + 1
    try:
        yield
    finally:
        _PLAIN.depth = depth


def fast_path_allowed() -> bool:
    """False inside `plain_forward`."""
    return not getattr(_PLAIN, "depth", 0)


DEFAULT_CHUNK_MB: dict[str, float | None] = {"cpu": 24.0, "cuda": 1024.0}
"""Default activation budget per chunk by device type (MiB of the largest activation);
``None`` runs every segment at once. The CPU value is measured by ``benchmarks/chunking.py``."""


@dataclass(frozen=True)
class InferenceOptions:
    """How a frame backbone runs in evaluation (see the module docs).

    Attributes:
        enabled: use the fast path at all (``False``: the plain module, as in training).
        fold_bn: fold BatchNorm into the preceding convolutions.
        fuse_act: with ``fold_bn``, apply a folded norm's activation inside the convolution
            (oneDNN, CPU float32 and bfloat16; elsewhere the same module runs them one after
            the other).
        pack_weights: with ``fuse_act``, give oneDNN each convolution's weight packed into its
            blocked layout once per input shape instead of reordering it at every call (CPU;
            costs up to two more copies of the convolution weights in memory).
        channels_last: NHWC weights and inputs.
        chunk_mb: MiB budget of a chunk's largest activation; ``"auto"`` takes
            `DEFAULT_CHUNK_MB` for the device; ``None`` never chunks.
        stage_chunks: with a budget, a backbone run stage by stage (`StagedBackbone`) gets
            one chunk size per stage from the same budget: the late, small-activation stages
            take many segments per call instead of the few the first stages allow.
        compile: ``torch.compile`` the copy; batches are zero-padded to the next power of two,
            so a new number of selected segments compiles at most once per power of two.
    """

    enabled: bool = True
    fold_bn: bool = True
    fuse_act: bool = True
    pack_weights: bool = True
    channels_last: bool = True
    chunk_mb: float | str | None = "auto"
    stage_chunks: bool = True
    compile: bool = False

    def __post_init__(self) -> None:
        for name in ("fuse_act", "pack_weights", "stage_chunks"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(
                    f"InferenceOptions.{name} must be True or False; got {getattr(self, name)!r}"
                )
        chunk = self.chunk_mb
        if not (chunk is None or chunk == "auto" or (isinstance(chunk, int | float) and chunk > 0)):
            raise ConfigError(
                f"InferenceOptions.chunk_mb must be a positive number of MiB, 'auto' or None; "
                f"got {chunk!r}"
            )

    def replace(self, **changes: Any) -> InferenceOptions:
        """A copy with some fields changed."""
        return replace(self, **changes)


def _affine_norm(module: nn.Module) -> bool:
    """A BatchNorm whose eval forward is ``act(drop(affine(x)))`` we know how to fold."""
    if type(module) in (nn.BatchNorm2d,):
        return True
    try:
        from timm.layers import BatchNormAct2d
    except ImportError:  # pragma: no cover - timm is a dependency
        return False
    return type(module) is BatchNormAct2d


class _FoldedNorm(nn.Module):
    """What is left of a folded BatchNorm: timm's drop and activation (or nothing)."""

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.drop = getattr(norm, "drop", None) or nn.Identity()
        self.act = getattr(norm, "act", None) or nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.drop(x))


def _onednn_activation(act: nn.Module) -> tuple[str, list[float]] | None:
    """oneDNN's name and scalars of a post-op equal to ``act``, or None."""
    if type(act) is nn.ReLU:
        return "relu", []
    if type(act) is nn.ReLU6:
        return "hardtanh", [0.0, 6.0]
    if type(act) is nn.Hardtanh:
        return "hardtanh", [float(act.min_val), float(act.max_val)]
    if type(act) is nn.SiLU:
        return "swish", []
    if type(act) is nn.Identity:  # a folded norm without activation: the packed weight helps
        return "none", []
    return None


_FUSED_DTYPES = (torch.float32, torch.bfloat16)


def _onednn_fusion_available() -> bool:
    """Whether this PyTorch build has oneDNN's fused convolution."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        torch.ops.mkldnn._convolution_pointwise  # noqa: B018 - looked up, not called
        torch.ops.mkldnn._reorder_convolution_weight  # noqa: B018
    except (AttributeError, RuntimeError):
        return False
    return True


def _onednn_conv(conv: nn.Module) -> bool:
    """A plain 2-d convolution that oneDNN's fused convolutions take (numeric zero padding)."""
    return (
        type(conv) is nn.Conv2d
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
    )


_PACKED_SHAPES = 2
"""Input shapes per convolution whose packed weight is kept (the chunk and the last chunk)."""


def _packed_weight(conv: nn.Conv2d, x: Tensor, pack: bool) -> Tensor:
    """``conv.weight`` in the blocked layout oneDNN picks for inputs shaped like ``x``.

    oneDNN otherwise reorders a plain weight into that layout at every call: packing it once
    made MobileNetV2 and ResNet-50 1.1x faster on CPU (the kernel ``torch.compile`` runs with
    frozen weights is the same). The layout depends on the input shape (a weight packed for 4
    frames ran 15x slower on 3), so a few shapes are kept per convolution, newest last; a new
    weight (its storage, version or dtype) drops them.
    """
    weight = conv.weight
    if not pack or torch.compiler.is_compiling():
        return weight
    cache: dict[Any, Any] = conv.__dict__.setdefault("_adamml_packed", {})
    version = None if weight.is_inference() else weight._version  # none kept in inference
    owner = (weight.data_ptr(), version, weight.dtype)
    if cache.get("owner") != owner:
        cache.clear()
        cache["owner"] = owner
    shapes: dict[tuple[int, ...], Tensor] = cache.setdefault("shapes", {})
    shape = tuple(x.shape)
    packed = shapes.pop(shape, None)
    if packed is None:
        packed = torch.ops.mkldnn._reorder_convolution_weight(
            weight,
            list(conv.padding),
            list(conv.stride),
            list(conv.dilation),
            conv.groups,
            list(shape),
        )
        while len(shapes) >= _PACKED_SHAPES:
            del shapes[next(iter(shapes))]
    shapes[shape] = packed  # re-inserted: newest last
    return packed


def _conv_args(conv: nn.Conv2d, x: Tensor, pack: bool) -> tuple[Any, ...]:
    """A convolution's weight (``pack``: packed for inputs like ``x``), bias, padding, stride,
    dilation and groups, as oneDNN's fused convolutions take them."""
    return (
        _packed_weight(conv, x, pack),
        conv.bias,
        list(conv.padding),
        list(conv.stride),
        list(conv.dilation),
        conv.groups,
    )


class ConvAct(nn.Module):
    """A convolution and the activation after it in one oneDNN call on a CPU in float32 or
    bfloat16 (``mkldnn._convolution_pointwise``, the kernel ``torch.compile`` uses for the same
    fusion); anywhere else ``act(conv(x))``. Built by `fold_batchnorm` with ``fuse_act=True``,
    also with ``nn.Identity`` for a folded convolution without activation. The weight is packed
    into oneDNN's layout once per input shape (kept for the last two shapes), not at each call.

    Args:
        conv: a 2-d convolution with numeric padding and zero padding mode.
        act: an activation `fusable` accepts (ReLU, ReLU6, Hardtanh, SiLU or Identity).
        pack_weights: pack the weight for each input shape (see `InferenceOptions`).
    """

    def __init__(self, conv: nn.Conv2d, act: nn.Module, *, pack_weights: bool = True) -> None:
        super().__init__()
        if not self.fusable(conv, act):
            raise ValueError(f"cannot fuse {type(conv).__name__} with {type(act).__name__}")
        self.conv, self.act, self.pack = conv, act, pack_weights
        self.post_op, self.scalars = _onednn_activation(act)  # type: ignore[misc]

    @staticmethod
    def fusable(conv: nn.Module, act: nn.Module) -> bool:
        """Whether ``conv`` and ``act`` can be one `ConvAct`."""
        return (
            _onednn_conv(conv)
            and _onednn_activation(act) is not None
            and _onednn_fusion_available()
        )

    def forward(self, x: Tensor) -> Tensor:
        conv = self.conv
        if x.device.type == "cpu" and x.dtype == conv.weight.dtype in _FUSED_DTYPES:
            return torch.ops.mkldnn._convolution_pointwise(
                x, *_conv_args(conv, x, self.pack), self.post_op, self.scalars, ""
            )
        return self.act(conv(x))


def _passthrough(module: nn.Module | None) -> bool:
    """Nothing left of a folded norm, or no module at all."""
    if module is None or type(module) is nn.Identity:
        return True
    return (
        type(module) is _FoldedNorm
        and type(module.act) is nn.Identity
        and type(module.drop) is nn.Identity
    )


def _folded_conv(conv: nn.Module) -> bool:
    """A convolution oneDNN can fuse, with a BatchNorm folded into it (so it has a bias)."""
    return _onednn_conv(conv) and conv.bias is not None


class ResidualConvAct(nn.Module):
    """timm's ResNet ``Bottleneck`` or ``BasicBlock`` after BatchNorm folding, as oneDNN calls
    with their ReLUs inside the convolutions and the residual add + ReLU inside the last one
    (``mkldnn._convolution_pointwise.binary``), on a CPU in float32 or bfloat16; anywhere else
    the block's own operations. Built by `fold_batchnorm` with ``fuse_act=True``.

    Args:
        convs: the block's convolutions in order (``conv1, conv2[, conv3]``), BatchNorm folded.
        downsample: the folded shortcut convolution, or None for the identity.
        pack_weights: pack the weights for each input shape (see `InferenceOptions`).
    """

    def __init__(
        self,
        convs: list[nn.Conv2d],
        downsample: nn.Conv2d | None,
        *,
        pack_weights: bool = True,
    ) -> None:
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.downsample = downsample
        self.pack = pack_weights

    @staticmethod
    def fusable(block: nn.Module) -> bool:
        """Whether ``block`` (after folding) is a plain ResNet block `ResidualConvAct` equals."""
        try:
            from timm.models.resnet import BasicBlock, Bottleneck
        except ImportError:  # pragma: no cover - timm is a dependency
            return False
        if type(block) not in (BasicBlock, Bottleneck) or not _onednn_fusion_available():
            return False
        n = 3 if type(block) is Bottleneck else 2
        convs = [getattr(block, f"conv{i}") for i in range(1, n + 1)]
        norms = [getattr(block, f"bn{i}") for i in range(1, n + 1)]
        acts = [getattr(block, f"act{i}") for i in range(1, n + 1)]
        others = [getattr(block, name, None) for name in ("drop_block", "aa", "se", "drop_path")]
        down = block.downsample
        down_ok = down is None or (
            type(down) is nn.Sequential
            and len(down) == 2
            and _folded_conv(down[0])
            and _passthrough(down[1])
        )
        return (
            all(_folded_conv(c) for c in convs)
            and all(_passthrough(m) for m in norms + others)
            and all(type(a) is nn.ReLU for a in acts)
            and down_ok
        )

    @classmethod
    def from_block(cls, block: nn.Module, *, pack_weights: bool = True) -> ResidualConvAct:
        n = 3 if hasattr(block, "conv3") else 2
        down = block.downsample[0] if block.downsample is not None else None
        convs = [getattr(block, f"conv{i}") for i in range(1, n + 1)]
        return cls(convs, down, pack_weights=pack_weights)

    def forward(self, x: Tensor) -> Tensor:
        *inner, last, down = *self.convs, self.downsample
        if x.device.type == "cpu" and x.dtype == last.weight.dtype in _FUSED_DTYPES:
            pointwise = torch.ops.mkldnn._convolution_pointwise
            shortcut = x
            if down is not None:
                shortcut = pointwise(x, *_conv_args(down, x, self.pack), "none", [], "")
            h = x
            for conv in inner:
                h = pointwise(h, *_conv_args(conv, h, self.pack), "relu", [], "")
            return pointwise.binary(
                h, shortcut, *_conv_args(last, h, self.pack), "add", 1.0, "relu", [], ""
            )
        shortcut = x if down is None else down(x)
        h = x
        for conv in inner:
            h = torch.relu(conv(h))
        return torch.relu(last(h) + shortcut)


def _fuse_residual_blocks(module: nn.Module, pack_weights: bool) -> None:
    """Replace every plain folded ResNet block below ``module`` by a `ResidualConvAct`."""
    blocks = [(n, m) for n, m in module.named_modules() if n and ResidualConvAct.fusable(m)]
    for name, block in blocks:
        module.set_submodule(name, ResidualConvAct.from_block(block, pack_weights=pack_weights))


def _wrap_plain_convs(module: nn.Module, convs: set[nn.Module], pack_weights: bool) -> None:
    """Make each of ``convs`` still called on its own a `ConvAct` without activation, so that
    it too runs with a packed weight."""
    fused = [n for n, m in module.named_modules() if isinstance(m, (ConvAct, ResidualConvAct))]
    for name, conv in list(module.named_modules()):
        inside = any(name.startswith(f"{prefix}.") for prefix in fused)
        if conv in convs and not inside and ConvAct.fusable(conv, nn.Identity()):
            module.set_submodule(name, ConvAct(conv, nn.Identity(), pack_weights=pack_weights))


def _pairs(
    module: nn.Module, sample: Tensor, run: Callable[[Tensor], Any]
) -> list[tuple[nn.Conv2d, str, nn.Module]]:
    """(conv, norm's dotted name, norm) pairs where the norm reads only that conv's output."""
    calls: list[tuple[nn.Module, Tensor | None, Tensor]] = []
    names = {m: n for n, m in module.named_modules()}
    hooks = []

    def record(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        if isinstance(out, Tensor):
            calls.append((mod, args[0] if args and isinstance(args[0], Tensor) else None, out))

    for m in module.modules():  # every leaf, so that any other reader of a conv output counts
        if not list(m.children()) or _affine_norm(m):
            hooks.append(m.register_forward_hook(record))
    try:
        with torch.no_grad():
            run(sample)
    finally:
        for h in hooks:
            h.remove()
    uses: dict[int, int] = {}
    for _, inp, _ in calls:
        if inp is not None:
            uses[id(inp)] = uses.get(id(inp), 0) + 1
    produced = {id(out): mod for mod, _, out in calls if isinstance(mod, nn.Conv2d)}
    pairs, seen = [], set()
    for mod, inp, _ in calls:
        if not _affine_norm(mod) or inp is None or mod in seen:
            continue
        conv = produced.get(id(inp))
        if conv is not None and uses.get(id(inp)) == 1 and conv.out_channels == mod.num_features:
            pairs.append((conv, names[mod], mod))
            seen.add(mod)
    return pairs


def fold_batchnorm(
    module: nn.Module,
    sample: Tensor,
    run: Callable[[Tensor], Any] | None = None,
    *,
    fuse_act: bool = False,
    pack_weights: bool = True,
) -> int:
    """Fold every eval-mode BatchNorm that reads only a convolution's output into that
    convolution, in place.

    Args:
        module: a module in eval mode (its convolutions' weights change).
        sample: an input to trace which convolution feeds which norm.
        run: how to call the module on ``sample`` (default ``module(sample)``).
        fuse_act: where the norm carries an activation (timm's ``BatchNormAct2d``) and no
            dropout, replace the convolution by a `ConvAct` that applies it; and replace each
            plain ResNet block (timm's ``Bottleneck``, ``BasicBlock``) by a `ResidualConvAct`;
            the other folded convolutions become `ConvAct` without activation.
        pack_weights: with ``fuse_act``, the fused modules pack their weights for oneDNN
            (`InferenceOptions.pack_weights`).

    Returns:
        How many norms were folded.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
        >>> fold_batchnorm(net, torch.randn(1, 3, 8, 8))
        1
    """
    pairs = _pairs(module, sample, run or module)
    conv_names = {m: n for n, m in module.named_modules()} if fuse_act else {}
    for conv, name, norm in pairs:
        scale = (
            norm.weight / torch.sqrt(norm.running_var + norm.eps)
            if norm.affine
            else (1.0 / torch.sqrt(norm.running_var + norm.eps))
        )
        shift = (norm.bias if norm.affine else 0.0) - norm.running_mean * scale
        with torch.no_grad():
            conv.weight.mul_(scale.reshape(-1, 1, 1, 1).to(conv.weight))
            bias = shift.to(conv.weight) if conv.bias is None else conv.bias * scale + shift
            conv.bias = nn.Parameter(bias.detach().clone(), requires_grad=False)
        rest = _FoldedNorm(norm)
        if (
            fuse_act
            and type(rest.drop) is nn.Identity
            and type(rest.act) is not nn.Identity
            and ConvAct.fusable(conv, rest.act)
        ):
            fused = ConvAct(conv, rest.act, pack_weights=pack_weights)
            module.set_submodule(conv_names[conv], fused)
            rest = nn.Identity()
        module.set_submodule(name, rest)
    if fuse_act:
        _fuse_residual_blocks(module, pack_weights)
        _wrap_plain_convs(module, {conv for conv, _, _ in pairs}, pack_weights)
    return len(pairs)


def _trace_on_meta(
    module: nn.Module, sample: Tensor, install: Callable[[nn.Module], list[Any]]
) -> None:
    """Run ``forward_features(sample)`` on a meta-device copy of ``module`` (no memory, no
    compute) with the hooks ``install(copy)`` registers, removed afterwards."""
    meta = copy.deepcopy(module).to("meta")
    hooks = install(meta)
    try:
        with torch.no_grad():
            meta.forward_features(sample.to("meta"))
    finally:
        for h in hooks:
            h.remove()


def _leaves(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if not list(m.children())]


def largest_activation_bytes(module: nn.Module, sample: Tensor) -> int:
    """Bytes of the largest tensor a leaf module of a backbone returns in
    ``module.forward_features(sample)``, measured on a meta-device copy (no memory, no
    compute)."""
    largest = 0

    def record(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        nonlocal largest
        if isinstance(out, Tensor):
            largest = max(largest, out.numel() * out.element_size())

    _trace_on_meta(
        module, sample, lambda meta: [m.register_forward_hook(record) for m in _leaves(meta)]
    )
    return largest


def stage_activation_bytes(module: nn.Module, sample: Tensor) -> list[tuple[int, int]]:
    """For each entry of a staged backbone's ``plan``: bytes of the largest tensor a leaf
    module returns inside it, and of its output, in ``module.forward_features(sample)``
    (a meta-device copy, like `largest_activation_bytes`)."""
    sizes = [[0, 0] for _ in module.plan]
    current = 0

    def enter(index: int) -> Callable[..., None]:
        def hook(mod: nn.Module, args: tuple[Any, ...]) -> None:
            nonlocal current
            current = index

        return hook

    def record(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        if isinstance(out, Tensor):
            sizes[current][0] = max(sizes[current][0], out.numel() * out.element_size())

    def leave(index: int) -> Callable[..., None]:
        def hook(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            size = out.numel() * out.element_size()
            sizes[index] = [max(sizes[index][0], size), size]

        return hook

    def install(meta: nn.Module) -> list[Any]:
        hooks = []
        for i, name in enumerate(meta.plan):
            stage = meta.get_submodule(name)
            hooks.append(stage.register_forward_pre_hook(enter(i)))
            hooks.append(stage.register_forward_hook(leave(i)))
            hooks += [m.register_forward_hook(record) for m in _leaves(stage)]
        return hooks

    _trace_on_meta(module, sample, install)
    return [(largest, out) for largest, out in sizes]


_BOUNDARY_BUDGETS = 4
"""The stage outputs kept between two chunk sizes, for all segments of an outer chunk, stay
within this many activation budgets."""

_BOUNDARY_SHARE = 1 / 16
"""A chunk size may change only after a stage whose output per segment is at most this share
of the budget (MobileNetV2's narrow block outputs, not ResNet's wide ones)."""


def stage_chunk_sizes(
    sizes: list[tuple[int, int]], budget_bytes: float
) -> tuple[tuple[int, ...], int]:
    """Segments per call of each stage and of the outer chunk, for per-stage sizes from
    `stage_activation_bytes` (bytes per segment in the run's dtype).

    Each stage may take as many segments as keep its largest activation within the budget;
    the sizes are made non-decreasing along the stages (no stage takes more than a later one)
    and change only after a narrow stage output, which is kept for every segment of the outer
    chunk: the outer chunk is bounded by `_BOUNDARY_BUDGETS` budgets of those outputs.

    Example:
        >>> stage_chunk_sizes([(16, 16), (16, 1), (2, 1)], budget_bytes=16)
        ((1, 1, 8), 8)
    """
    own = [max(1, int(budget_bytes // max(1, largest))) for largest, _ in sizes]
    chunks = own[:]
    for i in range(len(chunks) - 2, -1, -1):
        chunks[i] = min(chunks[i], chunks[i + 1])
    kept = []
    for i in range(len(chunks) - 1):
        if chunks[i + 1] != chunks[i]:
            if sizes[i][1] > _BOUNDARY_SHARE * budget_bytes:
                chunks[i + 1] = chunks[i]  # a wide output: no boundary here
            else:
                kept.append(sizes[i][1])
    outer = max(chunks)
    if kept:
        outer = min(outer, int(_BOUNDARY_BUDGETS * budget_bytes // max(1, max(kept))))
    return tuple(chunks), max(outer, min(chunks))


def _bucketed(call: Callable[[Tensor], Tensor], x: Tensor, chunk: int) -> Tensor:
    """``call(x)`` with ``x`` zero-padded to the next power of two (at most ``chunk``), then the
    padding cut off: a compiled backbone sees the chunk size and at most ``log2(chunk) + 1``
    smaller sizes, whatever the number of selected segments (rows are independent in eval, so
    the padding changes nothing)."""
    n = x.shape[0]
    size = min(1 << max(0, n - 1).bit_length(), max(n, chunk))
    if size == n:
        return call(x)
    return call(torch.cat([x, x.new_zeros((size - n, *x.shape[1:]))]))[:n]


def _params_key(module: nn.Module) -> tuple[Any, ...]:
    tensors = [*module.parameters(), *module.buffers()]
    return tuple((t.data_ptr(), t._version, t.dtype) for t in tensors)


class FastPath:
    """The cached inference copies of one backbone and the chunked call (module docs).

    The owner is passed to each call rather than stored, so a copy never holds its original.
    """

    def __init__(self) -> None:
        self._owner_key: tuple[Any, ...] | None = None
        self._copies: dict[tuple[Any, ...], Callable[[Tensor], Tensor]] = {}
        self.folded = 0

    def clear(self) -> None:
        """Forget the copies (after ``train()`` or a change of weights)."""
        self._copies.clear()
        self._owner_key = None

    @staticmethod
    def _plain_copy(owner: nn.Module, opts: InferenceOptions) -> nn.Module:
        fast = copy.deepcopy(owner).eval()
        fast.inference_options = opts.replace(enabled=False)  # the copy runs plainly
        for p in fast.parameters():
            p.requires_grad_(False)
        return fast

    def _build(
        self, owner: nn.Module, sample: Tensor, opts: InferenceOptions, features: bool
    ) -> Callable[[Tensor], Tensor]:
        fast = self._plain_copy(owner, opts)
        self.folded = 0
        if opts.fold_bn:
            probe = sample[:1].to(next(fast.parameters()).dtype)
            with torch.autocast(sample.device.type, enabled=False):
                method = "forward_features" if features else "forward"
                reference = getattr(fast, method)(probe)
                folded = fold_batchnorm(
                    fast,
                    probe,
                    getattr(fast, method),
                    fuse_act=opts.fuse_act,
                    pack_weights=opts.pack_weights,
                )
                if torch.allclose(getattr(fast, method)(probe), reference, rtol=1e-3, atol=1e-4):
                    self.folded = folded
                else:  # a fold that changes the output (an unusual graph): undo it
                    fast = self._plain_copy(owner, opts)
        if opts.channels_last:
            fast = fast.to(memory_format=torch.channels_last)
            fast.use_channels_last = True
        if sample.dtype != next(fast.parameters()).dtype:
            fast = fast.to(sample.dtype)
        call = fast.forward_features if features else fast.forward
        if opts.compile:
            call = torch.compile(call, dynamic=False)
        return call

    def _call(
        self, owner: nn.Module, sample: Tensor, opts: InferenceOptions, features: bool
    ) -> Callable[[Tensor], Tensor]:
        params = _params_key(owner)
        if params != self._owner_key:
            self.clear()
            self._owner_key = params
        key = (sample.device, sample.dtype, features, opts)
        if key not in self._copies:
            self._copies[key] = self._build(owner, sample, opts, features)
        return self._copies[key]

    @staticmethod
    def _budget_bytes(x: Tensor, opts: InferenceOptions) -> float | None:
        budget = opts.chunk_mb
        if budget == "auto":
            budget = DEFAULT_CHUNK_MB.get(x.device.type)
        return None if budget is None else float(budget) * 2**20

    @staticmethod
    def _key(owner: nn.Module, x: Tensor) -> tuple[Any, ...]:
        # activation sizes depend on the architecture and the input shape only
        arch = (type(owner), tuple((n, tuple(p.shape)) for n, p in owner.named_parameters()))
        return (arch, tuple(x.shape[1:]))

    def chunk_size(self, owner: nn.Module, x: Tensor, opts: InferenceOptions) -> int:
        """Segments per call for inputs like ``x`` under ``opts`` (at least 1)."""
        budget = self._budget_bytes(x, opts)
        if budget is None:
            return max(1, x.shape[0])
        key = self._key(owner, x)
        if key not in _ACTIVATION_BYTES:
            _ACTIVATION_BYTES[key] = largest_activation_bytes(owner, x[:1].float())
        per = _ACTIVATION_BYTES[key] * x.element_size() // 4
        return max(1, int(budget // max(1, per)))

    def stage_chunks(
        self, owner: nn.Module, x: Tensor, opts: InferenceOptions
    ) -> tuple[tuple[int, ...], int] | None:
        """Per-stage and outer segments per call for inputs like ``x`` (`stage_chunk_sizes`),
        or None where the backbone is not staged, the option is off, nothing is chunked or
        the copy is compiled (a new size per stage would recompile)."""
        budget = self._budget_bytes(x, opts)
        if not opts.stage_chunks or opts.compile or budget is None or not hasattr(owner, "plan"):
            return None
        key = self._key(owner, x)
        if key not in _STAGE_BYTES:
            _STAGE_BYTES[key] = stage_activation_bytes(owner, x[:1].float())
        scale = x.element_size() / 4
        sizes = [(int(a * scale), int(b * scale)) for a, b in _STAGE_BYTES[key]]
        return stage_chunk_sizes(sizes, budget)

    def __call__(
        self, owner: nn.Module, x: Tensor, opts: InferenceOptions, *, features: bool
    ) -> Tensor:
        """The eval forward of ``owner`` on ``x`` through the inference copy, in chunks."""
        device_type = x.device.type
        if torch.is_autocast_enabled(device_type):
            dtype = torch.get_autocast_dtype(device_type)
        else:
            dtype = next(owner.parameters()).dtype
        x = x.to(dtype)  # the copy runs in the dtype of its sample
        call = self._call(owner, x, opts, features)
        n = self.chunk_size(owner, x, opts)
        fast = getattr(call, "__self__", None)
        if hasattr(fast, "stage_chunks"):
            staged = self.stage_chunks(owner, x, opts) if n < x.shape[0] else None
            fast.stage_chunks = staged[0] if staged else None
            n = staged[1] if staged else n
        if opts.compile:
            run = call
            call = lambda part: _bucketed(run, part, n)  # noqa: E731
        if n >= x.shape[0]:
            return call(x)
        return torch.cat([call(x[i : i + n]) for i in range(0, x.shape[0], n)])
