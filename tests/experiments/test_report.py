"""The one results-table layout of the demo and the paper-table scripts."""

from __future__ import annotations

from adamml.engine.config import plain_data as plain
from adamml.experiments.demo import format_table as demo_table
from adamml.experiments.report import TableRow, format_table

METRICS = {
    "fusion": {
        "top1": 80.0,
        "mAP": 90.0,
        "gflops": 2.0,
        "selection_rate": {"audio": 100.0, "rgb": 100.0},
    },
    "adamml": {
        "top1": 85.0,
        "mAP": 91.5,
        "gflops": 0.5,
        "selection_rate": {"rgb": 20.0, "audio": 100.0},
    },
}


def test_columns_savings_and_paper_values() -> None:
    rows = [
        TableRow("fusion", "Weighted Fusion", baseline="fusion", paper=(87.86, 145.17)),
        TableRow("adamml", "AdaMML", group="ours", baseline="fusion", paper=(88.17, None)),
        TableRow("missing", "Not run"),
    ]
    text = format_table(rows, METRICS, title="T", paper_metric="Acc.", footer="F").splitlines()
    assert text[0] == "T" and text[-1] == "F"
    assert text[1].split()[:5] == ["Method", "Top-1", "mAP", "Sel.RGB", "Sel.Audio"]
    assert text[1].endswith("paper Acc. paper GFLOPs")
    fusion, group, adamml = text[3], text[4], text[5]
    assert group == "[ours]"
    assert fusion.split()[-4:] == ["2", "|", "87.86", "145.17"]  # its own baseline: no saving
    assert adamml.split()[1:8] == ["85.00", "91.50", "20.0", "100.0", "0.5", "-75.0%", "|"]
    assert adamml.split()[-1] == "88.17" and "Not run" not in "\n".join(text)


def test_the_demo_uses_the_same_layout_without_paper_columns() -> None:
    text = demo_table(METRICS).splitlines()
    assert text[0].startswith("Method") and "paper" not in text[0]
    assert text[2].startswith("Weighted fusion") and text[3].startswith("AdaMML")
    assert text[3].split()[-1] == "-75.0%"


def test_plain_gives_json_types() -> None:
    assert plain({"a": (1, 2), "b": {"c": 1.5}}) == {"a": [1, 2], "b": {"c": 1.5}}
