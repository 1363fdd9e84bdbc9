"""The ``adamml`` command line: train, eval, calibrate, predict, flops, list, extract, data, demo.

Every command returns 0 on success and prints one line ``adamml: error: ...`` (no traceback)
with a non-zero status on bad input. YAML is read here and nowhere else in the library.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser"]


def _cmd_train(args: argparse.Namespace) -> int:
    import yaml

    from .engine.config import TrainConfig, apply_overrides
    from .engine.distributed import cleanup, init_distributed
    from .engine.trainer import Trainer
    from .errors import ConfigError

    path = Path(args.config)
    if not path.is_file():
        raise ConfigError(f"config file {args.config!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(
            f"config {args.config!r} is not valid YAML: {str(err).splitlines()[0]}"
        ) from None
    overrides = list(args.overrides) + ([f"precision={args.precision}"] if args.precision else [])
    cfg = TrainConfig.from_dict(apply_overrides(raw, overrides))
    out = Path(args.out) if args.out else Path("runs") / path.stem
    info = init_distributed(cfg.device)
    try:
        metrics = Trainer(
            cfg,
            out,
            info=info,
            resume=args.resume,
            base_dir=path.parent,
            show_progress=not args.quiet,
            jobs=args.jobs,
        ).run()
    except BaseException:
        cleanup(info, wait=False)
        raise
    cleanup(info)
    if info.is_main:
        _print_metrics(metrics, out / "metrics.json")
    return 0


def _print_metrics(metrics: dict[str, Any], where: Path) -> None:
    rates = ", ".join(f"{m} {r:.1f}%" for m, r in metrics["selection_rate"].items())
    print(
        f"top1 {metrics['top1']:.2f}%  top5 {metrics['top5']:.2f}%  mAP {metrics['mAP']:.2f}%  "
        f"GFLOPs {metrics['gflops']:.4g}  selection: {rates}  ({metrics['num_videos']} videos)"
    )
    print(f"wrote {where}")


def _cmd_eval(args: argparse.Namespace) -> int:
    from .engine.distributed import cleanup, init_distributed
    from .engine.evaluate import evaluate
    from .engine.instantiate import model_from_checkpoint
    from .engine.loaders import make_loader
    from .engine.metrics import summarize
    from .engine.trainer import write_json

    online = args.early_exit is not None or args.early_exit_sweep is not None
    if online and args.sweep:
        from .errors import ConfigError

        raise ConfigError(
            "eval --sweep (decision thresholds) and --early-exit/--early-exit-sweep (stopping "
            "videos early) are two separate curves; run them one at a time"
        )
    info = init_distributed(args.device)
    try:
        model, ckpt = model_from_checkpoint(args.checkpoint, map_location=info.device)
        _run_options(model, args)
        ds = _checkpoint_data(args, model, ckpt, on_error=args.on_error)
        loader, _ = make_loader(
            ds,
            batch_size=args.batch_size * info.world_size,
            info=info,
            train=False,
            seed=0,
            workers=args.workers,
        )
        out = Path(args.out) if args.out else Path(args.checkpoint).parent / "eval"
        if online:
            result, metrics = _eval_online(model, loader, info, args, out)
        else:
            result = evaluate(model, loader, info, show_progress=not args.quiet)
            metrics = summarize(result)
        if info.is_main:
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / "metrics.json", metrics)
            result.save_decisions(str(out / "decisions.npz"))
            if online:
                _print_online(metrics, out)
            _print_metrics(metrics, out / "metrics.json")
        if args.sweep:
            _write_sweep(model, loader, info, args, out, metrics)
    except BaseException:
        cleanup(info, wait=False)
        raise
    cleanup(info)
    return 0


def _write_sweep(
    model: Any, loader: Any, info: Any, args: argparse.Namespace, out: Path, metrics: Any
) -> None:
    """``eval --sweep``: the accuracy-vs-GFLOPs curve of the checkpoint's thresholds."""
    from .engine.sweep import run_sweep
    from .errors import ConfigError

    if info.world_size > 1:
        raise ConfigError("eval --sweep runs in one process; run it without torchrun")
    csv_path, png_path, points = run_sweep(
        model,
        loader,
        out,
        points=args.sweep_points,
        rule=args.rule,
        current=metrics,
        compare=args.compare or (),
        show_progress=not args.quiet,
    )
    print(f"swept {len(points)} thresholds: wrote {csv_path} and {png_path}")


def _add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="also sweep the decision thresholds: OUT/sweep.csv and the accuracy-vs-GFLOPs "
        "curve OUT/sweep.png from this one checkpoint",
    )
    parser.add_argument("--sweep-points", type=int, default=21, help="budgets swept (21)")
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="RUN",
        help="other runs to plot as points (run folders, metrics.json files or LABEL=PATH), "
        "e.g. the same model retrained with other cost weights",
    )


def _add_rule_argument(parser: argparse.ArgumentParser, flag: str = "--rule") -> None:
    parser.add_argument(
        flag,
        dest="rule",
        default="cost",
        choices=("cost", "shared"),
        help="thresholds in proportion to each modality's GMACs (cost) or one for all (shared)",
    )


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from .engine.calibrate import calibrate, calibrated_path, fusion_gflops, save_calibrated
    from .engine.distributed import DistInfo, resolve_device
    from .engine.instantiate import model_from_checkpoint
    from .engine.loaders import make_loader

    budget, share = _budget(args.target_gflops)  # bad input fails before any work
    if args.out:
        calibrated_path(args.checkpoint, 0.0, args.out)
    device = resolve_device(args.device)
    model, ckpt = model_from_checkpoint(args.checkpoint, map_location=device)
    _run_options(model, args)
    ds = _checkpoint_data(args, model, ckpt)
    info = DistInfo(device=device)
    loader, _ = make_loader(
        ds, batch_size=args.batch_size, info=info, train=False, seed=0, workers=args.workers
    )
    fusion = fusion_gflops(model, args.segments)
    target = budget * fusion if share else budget
    result = calibrate(
        model,
        loader,
        target,
        rule=args.rule,
        tolerance=args.tolerance,
        show_progress=not args.quiet,
    )
    path = save_calibrated(args.checkpoint, model, result, args.out, data=args.data)
    m = result.metrics
    rates = ", ".join(f"{k} {v:.1f}%" for k, v in m["selection_rate"].items())
    t = ", ".join(f"{k} {v:+.4g}" for k, v in result.thresholds.items())
    print(
        f"target {target:.4g} GFLOPs ({100 * target / fusion:.1f} % of fusion's {fusion:.4g}): "
        f"reached {result.gflops:.4g} ({100 * result.error:+.2f} %) on {m['num_videos']} videos"
    )
    print(f"thresholds: {t}  top1 {m['top1']:.2f}%  mAP {m['mAP']:.2f}%  selection: {rates}")
    print(f"wrote {path}")
    return 0


def _budget(text: str) -> tuple[float, bool]:
    """``--target-gflops``: ``(GMACs per video, False)`` or ``(share of fusion's, True)`` for
    ``P%``."""
    from .errors import ConfigError

    value = text.strip()
    try:
        return (float(value[:-1]) / 100.0, True) if value.endswith("%") else (float(value), False)
    except ValueError:
        raise ConfigError(
            f"--target-gflops must be GFLOPs per video (0.02) or a share of fusion's (30%); "
            f"got {text!r}"
        ) from None


def _eval_online(
    model: Any, loader: Any, info: Any, args: argparse.Namespace, out: Path
) -> tuple[Any, dict[str, Any]]:
    """``eval --early-exit`` (the stream over each batch, stopping confident videos) or
    ``--early-exit-sweep`` (one pass without exit, every threshold from it: CSV and PNG)."""
    from .engine.online import (
        DEFAULT_THRESHOLDS,
        draw_sweep,
        early_exit_metrics,
        evaluate_stream,
        sweep_early_exit,
        write_sweep,
    )
    from .streaming import EarlyExit

    rule = None
    if args.early_exit is not None:
        rule = EarlyExit(args.early_exit, args.early_exit_metric, args.min_segments)
    else:
        EarlyExit(0.5, args.early_exit_metric, args.min_segments)  # check the options first
    online = evaluate_stream(model, loader, info, early_exit=rule, show_progress=not args.quiet)
    metrics = early_exit_metrics(online, rule)
    if args.early_exit_sweep is not None:
        thresholds = (
            DEFAULT_THRESHOLDS
            if args.early_exit_sweep == "default"
            else _thresholds(args.early_exit_sweep)
        )
        rows = sweep_early_exit(
            online, thresholds, metric=args.early_exit_metric, min_segments=args.min_segments
        )
        metrics["early_exit_sweep"] = rows
        if info.is_main:
            write_sweep(rows, out / "early_exit_sweep.csv")
            draw_sweep(rows, out / "early_exit_sweep.png")
    return online.result, metrics


def _thresholds(text: str) -> tuple[float, ...]:
    from .errors import ConfigError

    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        values = ()
    if not values:
        raise ConfigError(
            f"--early-exit-sweep takes comma-separated thresholds such as 0.5,0.8,0.95; "
            f"got {text!r}"
        )
    return values


def _print_online(metrics: dict[str, Any], out: Path) -> None:
    rule = metrics.get("early_exit")
    if rule:
        print(
            f"early exit at {rule['metric']} >= {rule['threshold']:g} (min {rule['min_segments']} "
            f"segments): {metrics['segments_used']:.2f} of {metrics['segments']} segments used"
        )
    rows = metrics.get("early_exit_sweep")
    if rows:
        print("threshold  top1     GFLOPs    segments")
        for row in rows:
            name = "whole" if row["threshold"] is None else f"{row['threshold']:g}"
            print(
                f"{name:<9}  {row['top1']:6.2f}%  {row['gflops']:<8.4g}  {row['segments_used']:.2f}"
            )
        print(f"wrote {out / 'early_exit_sweep.csv'} and {out / 'early_exit_sweep.png'}")


def _cmd_predict(args: argparse.Namespace) -> int:
    from .engine.flowsettings import resolve_flow_method
    from .engine.instantiate import model_from_checkpoint
    from .engine.predict import draw_decisions, load_inputs, predict_inputs

    model, ckpt = model_from_checkpoint(args.checkpoint)
    _run_options(model, args)
    seed = int(ckpt.get("config", {}).get("seed", 0))
    flow_method = resolve_flow_method(
        ckpt, args.flow_method, input_spec=_computes_flow(args, model)
    )
    if args.stream:
        return _predict_stream(args, model, ckpt, flow_method)
    if args.early_exit is not None or args.segment_frames is not None:
        from .errors import ConfigError

        raise ConfigError("--early-exit and --segment-frames of predict need --stream")
    inputs = load_inputs(
        args.video,
        model,
        args.segments,
        seed=seed,
        num_classes=int(ckpt["num_classes"]),
        flow_dir=args.flow_dir,
        flow_method=flow_method,
    )
    pred = predict_inputs(model, inputs, topk=args.topk, classes=ckpt.get("classes") or None)
    print(pred.format())
    if args.figure:
        print(f"wrote {draw_decisions(inputs, pred, args.figure)}")
    return 0


def _predict_stream(args: argparse.Namespace, model: Any, ckpt: Any, flow_method: str) -> int:
    """``predict --stream``: decode the file (or stdin, ``-``) segment by segment and print the
    running prediction after each; the final prediction as ``predict`` prints it."""
    from .engine.online import SegmentReport, predict_stream
    from .errors import ConfigError
    from .streaming import EarlyExit

    if args.flow_dir or args.figure:
        raise ConfigError(
            "--flow-dir and --figure are not used with --stream (flow is computed on demand "
            "from the decoded frames; the figure needs the whole video's inputs)"
        )
    if args.video == "-":
        source: Any = sys.stdin.buffer
    elif Path(args.video).is_file():
        source = args.video
    else:
        raise ConfigError(f"--stream reads a video file or - (stdin); {args.video!r} is neither")
    rule = None
    if args.early_exit is not None:
        rule = EarlyExit(args.early_exit, args.early_exit_metric, args.min_segments)
    for item in predict_stream(
        model,
        source,
        segments=args.segments,
        segment_frames=args.segment_frames,
        early_exit=rule,
        topk=args.topk,
        classes=ckpt.get("classes") or None,
        flow_method=flow_method,
    ):
        if isinstance(item, SegmentReport):
            print(item.format(), flush=True)
        else:
            print(f"final prediction after {item.decisions.shape[0]} segments:")
            print(item.format())
    return 0


def _add_early_exit_arguments(parser: argparse.ArgumentParser, *, sweep: bool) -> None:
    group = parser.add_mutually_exclusive_group() if sweep else parser
    group.add_argument(
        "--early-exit",
        type=float,
        metavar="THRESH",
        help="stop a video once its running prediction's confidence reaches THRESH (0-1)",
    )
    if sweep:
        group.add_argument(
            "--early-exit-sweep",
            nargs="?",
            const="default",
            metavar="T1,T2,...",
            help="accuracy vs GFLOPs over thresholds (default 0.5,0.6,0.7,0.8,0.9,0.95,0.99) "
            "from one streamed pass: early_exit_sweep.csv and .png in OUT",
        )
    parser.add_argument(
        "--early-exit-metric",
        choices=("prob", "margin"),
        default="prob",
        help="the top-1 softmax probability, or its margin over the top-2",
    )
    parser.add_argument(
        "--min-segments", type=int, default=1, help="never stop before this many segments"
    )


def _run_options(model: Any, args: argparse.Namespace) -> None:
    """``--precision`` and ``--compile`` of eval and predict."""
    if getattr(model, "set_precision", None) is not None:
        model.set_precision(args.precision)
    if args.compile and getattr(model, "configure_inference", None) is not None:
        model.configure_inference(compile=True)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16", "fp16"),
        help="autocast the backbones (bf16 on CPUs with bf16 matrix units)",
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the backbones' inference copies"
    )


def _cmd_flops(args: argparse.Namespace) -> int:
    from .zoo import create_model

    model = create_model(args.model, num_classes=args.num_classes)
    table = model.cost_table
    print(f"{args.model}: GMACs per segment (paper convention)")
    for m in model.modalities:
        print(f"  recognition {m:<10} {float(table.recognition[m]):.4f}")
    for m, v in dict(table.policy).items():
        print(f"  policy      {m:<10} {float(v):.4f}")
    print(f"  policy total           {float(table.policy_total):.4f}")
    everything = sum(float(table.recognition[m]) for m in model.modalities)
    print(
        f"per video, {args.segments} segments, every modality on: "
        f"{args.segments * (everything + float(table.policy_total)):.2f}"
    )
    return 0


_LISTS = {
    "models": ("zoo", "list_models"),
    "modalities": ("modalities", "list_modalities"),
    "backbones": ("backbones", "list_backbones"),
    "policies": ("policies", "list_policies"),
    "fusions": ("fusion", "list_fusions"),
    "plugins": ("registries", "list_plugins"),
    "sources": ("data.sources", "list_data_sources"),
}


def _cmd_list(args: argparse.Namespace) -> int:
    import importlib

    if args.what == "plugins":
        for line in _plugin_table():
            print(line)
        return 0
    module, func = _LISTS[args.what]
    items = getattr(importlib.import_module(f"adamml.{module}"), func)()
    for item in items:
        print(item if isinstance(item, str) else json.dumps(item, default=str))
    return 0


def _plugin_table() -> list[str]:
    """``adamml list plugins``: one row per component a plugin provides, with its distribution
    and version, or a line saying why there is none."""
    from ._registry import DISABLE_ENV, autoload_disabled
    from .registries import REGISTRIES, list_plugins

    infos = list_plugins()
    if not infos:
        if autoload_disabled():
            return [f"no plugins loaded: {DISABLE_ENV} is set, which turns plugin loading off"]
        return [
            "no plugins installed: no installed distribution declares entry points in the "
            f"groups {', '.join(sorted(REGISTRIES))} (docs/components/registry.md, "
            '"Writing a plugin")'
        ]
    rows = [("DISTRIBUTION", "VERSION", "KIND", "NAME", "OBJECT")]
    for info in sorted(infos, key=lambda i: (i.distribution or "", i.group, i.name)):
        kind = REGISTRIES[info.group].kind
        dist = info.distribution_name or "unknown"
        rows.append((dist, info.distribution_version or "?", kind, info.name, info.value))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    dists = len({info.distribution for info in infos})
    lines.append(f"{len(infos)} components from {dists} distribution{'s' * (dists != 1)}")
    return lines


def _cmd_demo(args: argparse.Namespace) -> int:
    from .experiments.demo import run_demo

    run_demo(args.out, seed=args.seed, threads=args.threads, jobs=args.jobs)
    return 0


def _checkpoint_data(
    args: argparse.Namespace, model: Any, ckpt: Any, *, on_error: str = "raise"
) -> Any:
    """What ``eval`` and ``calibrate`` evaluate on: ``--data`` with the checkpoint's inputs and
    classes, ``--segments``, stored flow or the flow method the checkpoint was trained with
    (warning on a different ``--flow-method``), flow on demand (only the segments the policy
    selects are computed)."""
    from .engine.evaluate import checkpoint_dataset
    from .engine.flowsettings import resolve_flow_method

    return checkpoint_dataset(
        args.data,
        model,
        ckpt,
        segments=args.segments,
        on_error=on_error,
        flow_dir=args.flow_dir,
        flow_method=resolve_flow_method(
            ckpt, args.flow_method, input_spec=_computes_flow(args, model)
        ),
        flow_on_demand=True,
    )


def _computes_flow(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    """The inputs whose flow method matters: none with stored flow (``--flow-dir``), so a
    different ``--flow-method`` only warns when flow is really computed."""
    return {} if args.flow_dir else dict(model.input_spec)


def _add_flow_arguments(parser: argparse.ArgumentParser) -> None:
    from .data.flow import FLOW_METHODS

    parser.add_argument(
        "--flow-dir", help="stored optical flow from `adamml extract flow` (no flow is computed)"
    )
    parser.add_argument(
        "--flow-method",
        choices=FLOW_METHODS,
        default=None,
        help="how flow is computed (default: the checkpoint's data.flow_method; another one warns)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``adamml`` argument parser (subcommands)."""
    p = argparse.ArgumentParser(
        prog="adamml", description="AdaMML: adaptive multi-modal video recognition (ICCV 2021)"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train from a YAML config")
    t.add_argument("--config", required=True, help="training config (YAML)")
    t.add_argument("--out", help="run folder (default runs/<config name>)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="run the independent pre-training stages side by side in this many forked CPU "
        "processes with one torch thread each (small models on a CPU; default 1)",
    )
    t.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        help="autocast precision (overrides the config's precision)",
    )
    t.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="dotted overrides, e.g. schedule.joint_epochs=3",
    )
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("eval", help="evaluate a checkpoint on a manifest")
    e.add_argument("--checkpoint", required=True)
    e.add_argument(
        "--data",
        required=True,
        help="manifest CSV or data source (synthetic:N, syntheticav:N,split=test)",
    )
    e.add_argument("--segments", type=int, default=10)
    e.add_argument("--out", help="folder for metrics.json (default CKPT_DIR/eval)")
    e.add_argument("--batch-size", type=int, default=8, help="per process")
    e.add_argument("--workers", type=int, default=0)
    e.add_argument("--device", default="cpu")
    e.add_argument("--on-error", default="raise", choices=("raise", "skip", "warn"))
    _add_early_exit_arguments(e, sweep=True)
    _add_flow_arguments(e)
    e.add_argument("--quiet", action="store_true")
    _add_run_options(e)
    _add_sweep_arguments(e)
    _add_rule_argument(e, "--sweep-rule")
    e.set_defaults(func=_cmd_eval)

    cal = sub.add_parser(
        "calibrate", help="set a checkpoint's decision thresholds for a GFLOPs budget"
    )
    cal.add_argument("--checkpoint", required=True)
    cal.add_argument("--data", required=True, help="validation data (manifest or data source)")
    cal.add_argument(
        "--target-gflops",
        required=True,
        help="GFLOPs per video (paper convention), or a share of weighted fusion's (30%%)",
    )
    cal.add_argument(
        "--out", help="the calibrated checkpoint (default CKPT.calibrated-<target>gflops.pt)"
    )
    _add_rule_argument(cal)
    cal.add_argument("--tolerance", type=float, default=0.05, help="relative, of the target (0.05)")
    cal.add_argument("--segments", type=int, default=10)
    cal.add_argument("--batch-size", type=int, default=8)
    cal.add_argument("--workers", type=int, default=0)
    cal.add_argument("--device", default="cpu")
    _add_flow_arguments(cal)
    cal.add_argument("--quiet", action="store_true")
    _add_run_options(cal)
    cal.set_defaults(func=_cmd_calibrate)

    r = sub.add_parser("predict", help="classify one video and show the modality choices")
    r.add_argument(
        "video",
        help="video file, .pt tensors, or one video of a data source (synthetic:N,index=I); "
        "with --stream a video file or - (stdin)",
    )
    r.add_argument("--checkpoint", required=True)
    r.add_argument("--figure", help="write a decisions figure (PNG)")
    r.add_argument("--topk", type=int, default=5)
    r.add_argument("--segments", type=int, default=10)
    r.add_argument(
        "--stream",
        action="store_true",
        help="decode segment by segment and print the running prediction after each",
    )
    r.add_argument(
        "--segment-frames",
        type=int,
        help="with --stream: segments of this many frames instead of --segments over the "
        "whole video (used, with 64, when the frame count is unknown: a pipe)",
    )
    _add_early_exit_arguments(r, sweep=False)
    _add_flow_arguments(r)
    _add_run_options(r)
    r.set_defaults(func=_cmd_predict)

    f = sub.add_parser("flops", help="print a model's cost table")
    f.add_argument("model")
    f.add_argument("--segments", type=int, default=10)
    f.add_argument("--num-classes", type=int, default=31)
    f.set_defaults(func=_cmd_flops)

    li = sub.add_parser("list", help="list registered names")
    li.add_argument("what", nargs="?", default="models", choices=sorted(_LISTS))
    li.set_defaults(func=_cmd_list)

    from .data import commands

    x = sub.add_parser("extract", help="frames, audio and optical flow from video files")
    d = sub.add_parser("data", help="dataset tools")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    c = dsub.add_parser("check", help="check that every video of a manifest decodes")
    im = dsub.add_parser(
        "import", help="a manifest from a paper dataset's annotation file and its videos"
    )
    commands.add_import_arguments(im)
    im.set_defaults(func=commands.run_import)
    commands.add_extract_arguments(x)
    x.set_defaults(func=commands.run_extract)
    commands.add_check_arguments(c)
    c.set_defaults(func=commands.run_check)

    dm = sub.add_parser("demo", help="train and compare on synthetic data (CPU, minutes)")
    dm.add_argument("--out", default="demo_out")
    dm.add_argument("--seed", type=int, default=0, help="seeds the synthetic data and training")
    dm.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: 1 with --jobs above 1, else one per core; "
        "use 1 on a busy machine)",
    )
    dm.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="independent runs side by side in forked processes of one thread each "
        "(default: 2 on two or more cores unless --threads is above 1)",
    )
    dm.set_defaults(func=_cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (also ``python -m adamml``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    from .errors import AdamMLError

    try:
        return int(func(args) or 0)
    except (AdamMLError, FileNotFoundError, NotImplementedError) as err:
        print(f"adamml: error: {_one_line(err)}", file=sys.stderr)
        return 2 if not isinstance(err, NotImplementedError) else 1
    except KeyboardInterrupt:
        print("adamml: interrupted", file=sys.stderr)
        return 130


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return f"{type(err).__name__}: {' '.join(text.split())}"
