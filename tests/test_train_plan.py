"""Time-budgeted training plans, the LM's held-out split and the speech folder formats."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from simlab.errors import UserError
from simlab.train.state import StepPlan, lr_schedule, train_loop


def test_plan_fits_the_remaining_budget_and_never_grows():
    plan = StepPlan(1000, budget_s=10.0)
    plan.fit(done=22, elapsed_s=2.0, per_step_s=0.5)
    assert plan.steps == 22 + 16
    big = StepPlan(30, budget_s=1e6)
    big.fit(done=22, elapsed_s=1.0, per_step_s=0.01)
    assert big.steps == 30
    with pytest.raises(UserError, match="budget_s"):
        StepPlan.from_config({"steps": 5, "budget_s": -1})


def _lr_run(tmp_path, name, steps, budget_s, pause_s):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    plan = StepPlan(steps, budget_s, probe=10)
    sched = lr_schedule(opt, 25, plan, 0)
    lrs, saved = [], []

    def step(i):
        lrs.append(opt.param_groups[0]["lr"])
        time.sleep(pause_s)
        opt.step()
        sched.step()
        return {"loss": 0.0}

    train_loop(plan, 0, step, saved.append, 1000, name, tmp_path / name / "log.jsonl")
    return plan, lrs, saved


def test_budgeted_run_stops_in_time_and_its_printed_steps_rerun_it_exactly(tmp_path):
    plan, lrs, saved = _lr_run(tmp_path, "budget", 10**6, 0.5, 0.01)
    log = [json.loads(x) for x in (tmp_path / "budget" / "log.jsonl").read_text().splitlines()]
    assert 25 < plan.steps < 10**6 and log[-1]["elapsed_s"] < 0.5 + 0.3
    assert saved == [plan.steps]  # the final checkpoint is the last step
    assert [x["step"] for x in log] == list(range(plan.steps))
    assert lrs[-1] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * (plan.steps - 1 - 25) / (plan.steps - 25))))
    fixed, lrs_fixed, _ = _lr_run(tmp_path, "fixed", plan.steps, None, 0.0)
    assert lrs_fixed == lrs  # the probe ends inside the warm-up: same schedule, same run


def test_lm_hold_out_is_seeded_disjoint_and_fixed():
    from simlab.train.lm import hold_out

    streams = [np.full((8, 40 + i), i, dtype=np.int16) for i in range(20)]
    cfg = {"val_fraction": 0.1, "val_batches": 2, "batch": 3, "frames": 16, "seed": 7}
    train, val = hold_out(streams, cfg, "cpu")
    train2, val2 = hold_out(streams, cfg, "cpu")
    assert len(train) == 18 and val.shape == (6, 8, 16) and torch.equal(val, val2)
    held = set(val[:, 0, 0].tolist())
    assert held and held.isdisjoint({int(s[0, 0]) for s in train})
    assert [int(s[0, 0]) for s in train] == [int(s[0, 0]) for s in train2]
    none_train, none_val = hold_out(streams, {**cfg, "val_fraction": 0.0}, "cpu")
    assert none_val is None and len(none_train) == 20


def test_lm_shifted_encodings_train_only_on_training_utterances():
    from simlab.train.lm import grid_shifts, hold_out

    assert grid_shifts(4) == [0, 480, 960, 1440] and grid_shifts(1) == [0]
    streams = [np.full((8, 40), i, dtype=np.int16) for i in range(20)]
    shifted = [[np.full((8, 39), 100 * k + i, dtype=np.int16) for i in range(20)] for k in (1, 2)]
    cfg = {"val_fraction": 0.1, "val_batches": 2, "batch": 3, "frames": 16, "seed": 7}
    plain, val = hold_out(streams, cfg, "cpu")
    train, val_aug = hold_out(streams, cfg, "cpu", shifted)
    assert torch.equal(val, val_aug)  # the same held-out windows: losses stay comparable
    assert len(train) == 3 * len(plain) and train[:len(plain)] == plain
    kept = {int(s[0, 0]) % 100 for s in train}
    assert kept == {int(s[0, 0]) for s in plain}  # every encoding of a held-out utterance is left out


def test_speech_folder_may_hold_wav_and_opus_copies(tmp_path):
    import soundfile as sf

    from simlab.train.data import list_files, load_corpus

    t = np.arange(16000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    (tmp_path / "a").mkdir()
    sf.write(tmp_path / "a" / "one.wav", x, 16000)
    sf.write(tmp_path / "two.opus", x, 16000, format="OGG", subtype="OPUS")
    (tmp_path / "notes.txt").write_text("not audio")
    files = list_files(str(tmp_path))
    assert [f.name for f in files] == ["one.wav", "two.opus"]
    corpus = load_corpus(str(tmp_path), 10.0, np.random.default_rng(0))
    assert sorted(len(c) for c in corpus)[0] == 24000  # resampled to 24 kHz
    assert len(corpus) == 2


def test_recipe_defaults_live_in_the_users_cache_folder_not_a_fixed_path(monkeypatch, tmp_path):
    from simlab.train.config import RECIPES, load_config

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for recipe in RECIPES:
        paths = [v for v in load_config(recipe).values() if isinstance(v, str) and "/" in v]
        assert paths and all(p.startswith(str(tmp_path / "simlab" / "train")) for p in paths), (recipe, paths)
    lm = load_config("lm", overrides={"cache_dir": "{train_dir}/mine"})
    assert lm["cache_dir"] == str(tmp_path / "simlab" / "train" / "mine")
