"""Result tables of experiments: one layout for the demo and the paper-table scripts.

```
Method            Top-1    mAP    Sel.RGB  Sel.Audio     GFLOPs   saving | paper Acc. ...
Weighted fusion   87.67  92.71      100.0      100.0    0.0523         |
AdaMML            91.00  97.52       41.3      100.0    0.02469  -52.8% |
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["TableRow", "format_table", "MODALITY_ORDER", "MODALITY_LABELS"]

MODALITY_ORDER: tuple[str, ...] = ("rgb", "flow", "rgbdiff", "audio")
"""The order of the selection-rate columns (other modalities follow, sorted)."""

MODALITY_LABELS = {"rgb": "RGB", "flow": "Flow", "rgbdiff": "RGBDiff", "audio": "Audio"}


@dataclass(frozen=True)
class TableRow:
    """One row of a results table (the paper-table scripts' `Run` has the same fields).

    Attributes:
        key: the row's entry in the metrics mapping.
        label: the row's name in the table.
        group: a section heading printed before the first row of the group.
        baseline: the key of the row the GFLOPs saving is measured against.
        paper: the paper's ``(metric, GFLOPs)`` for this row (GFLOPs may be ``None``).
        quoted: a published method that was not run: the row shows the paper's numbers only.
    """

    key: str
    label: str
    group: str = ""
    baseline: str | None = None
    paper: tuple[float, float | None] | None = None
    quoted: bool = False


def format_table(
    rows: Sequence[Any],
    metrics: Mapping[str, Mapping[str, Any]],
    *,
    title: str = "",
    paper_metric: str | None = None,
    footer: str | None = None,
) -> str:
    """Rows laid out like the paper's tables: top-1 and mAP, the selection rate per modality,
    GFLOPs per video with the saving against the row's baseline, and (given ``paper_metric``)
    the paper's metric and GFLOPs.

    Args:
        rows: `TableRow`-like objects (``key``, ``label``, ``group``, ``baseline``, ``paper``,
            optionally ``quoted``); rows without metrics are left out, except quoted rows,
            which show dashes in our columns and the paper's numbers, labelled "(quoted)".
        metrics: ``{key: metrics.json of its run}``.
        title: a first line.
        paper_metric: ``Acc.`` or ``mAP``; ``None`` leaves out the paper columns.
        footer: a last line.

    Returns:
        The table as text.
    """
    present = {m for r in rows for m in metrics.get(r.key, {}).get("selection_rate", {})}
    mods = [m for m in MODALITY_ORDER if m in present] + sorted(present - set(MODALITY_ORDER))
    # " (quoted)" follows a quoted row's label
    width = max([len(r.label) + 9 * bool(getattr(r, "quoted", False)) for r in rows] + [28]) + 2
    head = (
        f"{'Method':<{width}} {'Top-1':>6} {'mAP':>6} "
        + " ".join(f"{'Sel.' + MODALITY_LABELS.get(m, m):>10}" for m in mods)
        + f" {'GFLOPs':>10} {'saving':>8}"
    )
    if paper_metric:
        head += f" | {'paper ' + paper_metric:>11} {'paper GFLOPs':>12}"
    lines = ([title] if title else []) + [head, "-" * len(head)]
    group = None
    for r in rows:
        if r.group != group:
            group = r.group
            if group:
                lines.append(f"[{group}]")
        m = metrics.get(r.key)
        if m is None and getattr(r, "quoted", False) and paper_metric:
            ours = f"{'-':>6} {'-':>6} " + " ".join(f"{'-':>10}" for _ in mods)
            pm = f"{r.paper[0]:.2f}" if r.paper else ""
            pg = f"{r.paper[1]:.2f}" if r.paper and r.paper[1] is not None else ""
            label = f"{r.label} (quoted)"
            lines.append(f"{label:<{width}} {ours} {'-':>10} {'':>8} | {pm:>11} {pg:>12}")
            continue
        if m is None:
            continue
        sel = m["selection_rate"]
        rates = " ".join(f"{sel[x]:>10.1f}" if x in sel else f"{'-':>10}" for x in mods)
        base = metrics.get(r.baseline or "", {}).get("gflops")
        saving = (
            f"{100.0 * (m['gflops'] / base - 1.0):+.1f}%" if base and r.baseline != r.key else ""
        )
        line = (
            f"{r.label:<{width}} {m['top1']:>6.2f} {m['mAP']:>6.2f} {rates} "
            f"{m['gflops']:>10.4g} {saving:>8}"
        )
        if paper_metric:
            pm = f"{r.paper[0]:.2f}" if r.paper else ""
            pg = f"{r.paper[1]:.2f}" if r.paper and r.paper[1] is not None else ""
            line += f" | {pm:>11} {pg:>12}"
        lines.append(line.rstrip())
    if footer:
        lines.append(footer)
    return "\n".join(lines)
