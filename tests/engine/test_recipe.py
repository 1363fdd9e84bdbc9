"""The recipe's pre-training stages, the policy start and the collapse warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import adamml
from adamml.engine.config import TrainConfig
from adamml.engine.health import PolicyCollapseWarning
from adamml.engine.instantiate import model_from_checkpoint
from adamml.engine.recipe import pretraining_plan
from adamml.engine.trainer import Trainer

BASE = {
    "model": "test_adamml_rgb_audio",
    "num_classes": 3,
    "data": {
        "train": "synthetic:12",
        "val": "synthetic:6",
        "segments_train": 2,
        "segments_eval": 2,
    },
    "schedule": {"warmup_epochs": 1, "joint_epochs": 1, "finetune_epochs": 1},
    "batch_size": 6,
    "seed": 0,
}


def config(**over) -> TrainConfig:
    raw = json.loads(json.dumps(BASE))
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key].update(value)
        else:
            raw[key] = value
    return TrainConfig.from_dict(raw)


def test_plan_pretrains_every_part_once_and_init_overrides() -> None:
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=3)
    assert model.part_names == ("rgb", "audio", "policy.rgb", "policy.audio")
    stages = pretraining_plan(config(), model)
    # the audio policy extractor has the audio backbone's architecture: one stage serves both
    assert [(s.name, s.parts) for s in stages] == [
        ("rgb", ("rgb",)),
        ("audio", ("audio", "policy.audio")),
        ("policy.rgb", ("policy.rgb",)),
    ]
    assert stages[0].config.schedule.epochs == 20 and stages[0].config.optim.optimizer == "adam"
    assert [s.name for s in pretraining_plan(config(init={"rgb": "x.pt"}), model)] == [
        "audio",
        "policy.rgb",
    ]
    assert pretraining_plan(config(pretrain="none"), model) == []
    assert pretraining_plan(config(pretrain={"policy": False}), model)[-1].name == "audio"
    uni = adamml.create_model("test_unimodal_rgb", num_classes=3)
    assert pretraining_plan(config(model="test_unimodal_rgb"), uni) == []


def test_auto_epochs_give_a_small_training_set_more_epochs() -> None:
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=3)

    def epochs(videos: int, **over) -> list[int]:
        plan = pretraining_plan(config(batch_size=16, **over), model, train_videos=videos)
        return [s.config.schedule.epochs for s in plan]

    assert epochs(400) == [20, 20, 20]  # 25 steps per epoch: 500 steps in 20 epochs
    assert epochs(240) == [34, 34, 34]  # 15 steps per epoch: ceil(500 / 15)
    assert epochs(12) == [50, 50, 50]  # one step per epoch: capped
    assert epochs(240, pretrain={"epochs": 3}) == [3, 3, 3]  # an integer is used as given
    assert epochs(240, pretrain={"epochs": None}) == [3, 3, 3]  # the schedule's 1 + 1 + 1
    with pytest.raises(adamml.ConfigError, match="pretrain.epochs"):
        config(pretrain={"epochs": "many"})


def test_a_one_modality_model_with_a_cheap_extractor_pretrains_it() -> None:
    # LiteEval: one recognised modality, but its coarse path has an extractor of its own
    model = adamml.create_model("test_liteeval_rgb", num_classes=3)
    assert model.part_names == ("rgb", "policy.rgb")
    cfg = config(model="test_liteeval_rgb", init={"rgb": "x.pt"})
    assert [(s.name, s.parts) for s in pretraining_plan(cfg, model)] == [
        ("policy.rgb", ("policy.rgb",))
    ]


def test_pretraining_stages_run_and_initialise_the_parts(tmp_path: Path) -> None:
    cfg = config(pretrain={"epochs": 1}, schedule={"joint_epochs": 0, "finetune_epochs": 0})
    trainer = Trainer(cfg, tmp_path / "run", show_progress=False)
    metrics = trainer.run()
    assert set(metrics["pretrain"]) == {"rgb", "audio", "policy.rgb"}
    for stage in metrics["pretrain"].values():
        assert (Path(stage["folder"]) / "metrics.json").exists()
    # each stage's checkpoint rebuilds on its own (adamml eval works on it) ...
    part, _ = model_from_checkpoint(tmp_path / "run" / "pretrain" / "policy.rgb" / "best.pt")
    assert part.modalities == ("rgb",)
    # ... and its weights are where the main model started
    first = torch.load(tmp_path / "run" / "pretrain" / "audio" / "best.pt", weights_only=True)
    fresh = adamml.create_model("test_adamml_rgb_audio", num_classes=3)
    fresh.load_part_state("policy.audio", first["model"])
    got = fresh.part("policy.audio").state_dict()
    want = {
        k[len("router.backbones.audio.") :]: v
        for k, v in first["model"].items()
        if k.startswith("router.backbones.audio.") and not k.split(".")[3] == "fc"
    }
    assert all(torch.equal(got[k], want[k]) for k in got)


def test_stages_sample_their_data_as_the_model_does(tmp_path: Path, monkeypatch) -> None:
    """A pre-training stage reads its modality sampled as the whole model samples it (audio
    windows centred on the model's RGB sampling), not as a model of that modality alone."""
    from adamml.engine import trainer as trainer_module

    asked: list[tuple[tuple[str, ...], tuple[str, ...] | None]] = []
    real = trainer_module.build_dataset

    def spy(source, input_spec, **kw):
        like = kw.get("sample_like")
        asked.append((tuple(input_spec), tuple(like) if like else None))
        return real(source, input_spec, **kw)

    monkeypatch.setattr(trainer_module, "build_dataset", spy)
    cfg = config(pretrain={"epochs": 1}, init={"rgb": "later.pt"})
    Trainer(cfg, tmp_path / "run", show_progress=False).pretrain()
    assert set(asked) == {
        (("rgb", "audio"), None),  # the run's own data
        (("audio",), ("rgb", "audio")),  # the audio stage
        (("rgb",), ("rgb", "audio")),  # the policy's RGB extractor's stage
    }


def test_stages_need_no_init_files_and_run_checks_them_first(tmp_path: Path, monkeypatch) -> None:
    """The pre-training stages (trained from labels) do not read the run's ``init``, so a
    table's row can pre-train before the run that writes its init checkpoint ends; an init file
    that is not there yet is read by ``run`` after the stages, which names a missing one before
    any stage starts."""
    from adamml.engine import trainer as trainer_module

    later = tmp_path / "unimodal_rgb" / "best.pt"  # not written yet
    cfg = config(
        init={"rgb": str(later)},
        pretrain={"epochs": 1},
        schedule={"joint_epochs": 0, "finetune_epochs": 0},
    )
    with pytest.raises(adamml.CheckpointError, match=r"unimodal_rgb/best.pt' for 'rgb' does not"):
        Trainer(cfg, tmp_path / "early", show_progress=False).run()
    assert not (tmp_path / "early" / "pretrain").exists()  # nothing ran
    stages = Trainer(cfg, tmp_path / "run", show_progress=False).pretrain()
    assert set(stages) == {"audio", "policy.rgb"}
    # the init checkpoint appears; the run finds its stages done and loads every part
    unimodal = {**BASE, "model": "test_unimodal_rgb", "schedule": {"epochs": 1}}
    Trainer(TrainConfig.from_dict(unimodal), later.parent, show_progress=False).run()
    loaded: list[set[str]] = []
    real = trainer_module.load_backbone_init
    monkeypatch.setattr(
        trainer_module,
        "load_backbone_init",
        lambda m, init: (loaded.append(set(init)), real(m, init)),
    )
    Trainer(cfg, tmp_path / "run", show_progress=False, resume=True).run()
    assert loaded == [{"rgb"}, {"audio", "policy.audio", "policy.rgb"}]
    with pytest.raises(adamml.ConfigError, match="init names 'flow'"):
        Trainer(config(init={"flow": "x.pt"}), tmp_path / "bad", show_progress=False)


def test_a_forced_collapse_is_reported_and_recorded(tmp_path: Path) -> None:
    cfg = config(
        pretrain="none",
        policy_start="immediate",
        policy_lr=0.3,
        schedule={"joint_epochs": 2, "finetune_epochs": 0},
        loss={"cost_weights": {"rgb": 1e4, "audio": 1e4}},
    )
    with pytest.warns(PolicyCollapseWarning, match="rgb was selected on 0.0%") as caught:
        metrics = Trainer(cfg, tmp_path / "run", show_progress=False).run()
    assert "What usually helps" in str(caught[0].message)
    assert any("rgb was selected on 0.0%" in w for w in metrics["warnings"])
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").open()]
    assert any("warnings" in r for r in records)


def test_policy_passes_wait_until_recognition_beats_the_uniform_prediction(tmp_path: Path) -> None:
    import math

    cfg = config(pretrain="none", schedule={"joint_epochs": 3})
    Trainer(cfg, tmp_path / "run", show_progress=False).run()
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").open()]
    ready, last_ce, held = False, None, 0
    for r in records:
        if r["phase"] == "policy":
            ready = ready or (last_ce is not None and last_ce < math.log(3))
            assert ("skipped" in r) == (not ready), r
            held += not ready
        if "val" in r:
            last_ce = r["val"]["ce"]
    assert any(r["phase"] == "policy" for r in records)
    immediate = config(pretrain="none", schedule={"joint_epochs": 3}, policy_start="immediate")
    Trainer(immediate, tmp_path / "now", show_progress=False).run()
    assert not any(
        "skipped" in json.loads(line) for line in (tmp_path / "now" / "log.jsonl").open()
    )


def test_distilled_policy_stage_learns_from_the_recognition_teacher(tmp_path: Path) -> None:
    from adamml.model import SegmentDistiller

    cfg = config(
        pretrain={"epochs": 1, "policy_target": "distill"},
        schedule={"joint_epochs": 0, "finetune_epochs": 0},
    )
    metrics = Trainer(cfg, tmp_path / "run", show_progress=False).run()
    stage = metrics["pretrain"]["policy.rgb"]
    assert stage["teacher"] == "rgb"
    ckpt = Path(stage["folder"]) / "best.pt"
    student, saved = model_from_checkpoint(ckpt)
    assert isinstance(student, SegmentDistiller)
    # the teacher is the rgb stage's backbone, frozen
    teacher = torch.load(Path(metrics["pretrain"]["rgb"]["folder"]) / "best.pt", weights_only=True)[
        "model"
    ]
    got = student.teacher.state_dict()
    assert all(torch.equal(got[k], teacher[f"router.backbones.rgb.{k}"]) for k in got)
    assert not any(p.requires_grad for p in student.teacher.parameters())
    fresh = adamml.create_model("test_adamml_rgb_audio", num_classes=3)
    fresh.load_part_state("policy.rgb", saved["model"])
    want = {
        k[len("student.net.") :]: v
        for k, v in saved["model"].items()
        if k.startswith("student.net.") and not k.startswith("student.net.fc.")
    }
    assert all(torch.equal(fresh.part("policy.rgb").state_dict()[k], v) for k, v in want.items())
