"""Training checkpoints and the recipes' command line: what a resumed run restores (spawn
counter, trained tensors only, a budget's step count, the log), bad config values refused in
one line, output folders checked up front, interrupts without a traceback."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from simlab.errors import UserError
from simlab.train.config import load_config
from simlab.train.erasures import draw_lost
from simlab.train.state import STATE_FILE, StepPlan, load_state, save_state, train_loop

ROOT = Path(__file__).resolve().parents[1]
BURSTS = {"kinds": {"burst": 1.0}, "p_min": 0.1, "p_max": 0.4, "burst": 3, "frames_per_packet": 2}


class _Half(torch.nn.Module):
    """One frozen and one trained parameter, and a buffer."""

    def __init__(self):
        super().__init__()
        self.base = torch.nn.Parameter(torch.ones(3), requires_grad=False)
        self.lora_a = torch.nn.Parameter(torch.zeros(2))
        self.register_buffer("stat", torch.zeros(1))


def _checkpoint(tmp_path, module, rng, plan=None, step=1):
    opt = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=0.1)
    save_state(tmp_path, step, {"m": module}, opt, rng, **({"plan": plan} if plan else {}))
    return opt


def test_resumed_burst_erasures_continue_the_spawned_channels(tmp_path):
    rng = np.random.default_rng(0)
    first = [draw_lost(BURSTS, 2, 8, 16, rng) for _ in range(3)]  # each burst channel spawns twice
    _checkpoint(tmp_path, _Half(), rng)
    later = [draw_lost(BURSTS, 2, 8, 16, rng) for _ in range(3)]
    resumed = np.random.default_rng(0)
    module = _Half()
    load_state(tmp_path, {"m": module}, torch.optim.SGD([module.lora_a], lr=0.1), resumed)
    assert all(np.array_equal(a, b) for a, b in zip(later, [draw_lost(BURSTS, 2, 8, 16, resumed) for _ in range(3)]))
    assert first[0].any()
    with pytest.raises(UserError, match="another seed"):
        load_state(tmp_path, {"m": _Half()}, torch.optim.SGD([module.lora_a], lr=0.1), np.random.default_rng(1))


def test_checkpoint_holds_trained_tensors_only_and_checks_them_on_load(tmp_path):
    module = _Half()
    with torch.no_grad():
        module.lora_a.fill_(2.0)
        module.stat.fill_(5.0)
    _checkpoint(tmp_path, module, np.random.default_rng(0))
    saved = torch.load(tmp_path / STATE_FILE, weights_only=True)["modules"]["m"]
    assert set(saved) == {"lora_a", "stat"}  # no frozen base weights
    fresh = _Half()
    load_state(tmp_path, {"m": fresh}, torch.optim.SGD([fresh.lora_a], lr=0.1), np.random.default_rng(0))
    assert fresh.lora_a.tolist() == [2.0, 2.0] and fresh.stat.item() == 5.0
    other = _Half()
    other.base.requires_grad_(True)  # trained now, but not in the checkpoint
    with pytest.raises(UserError, match="lacks trained tensors.*base"):
        load_state(tmp_path, {"m": other}, torch.optim.SGD([other.lora_a], lr=0.1), np.random.default_rng(0))


def test_a_peft_checkpoint_leaves_out_the_base_lm(tmp_path):
    from simlab.models.lm_config import build_lm, small_lm_kwargs
    from simlab.models.lora import add_lora

    kwargs = {**small_lm_kwargs(card=64), "dim": 32, "num_heads": 2, "num_layers": 1, "depformer_dim": 32,
              "depformer_num_heads": 2, "depformer_num_layers": 1, "depformer_dim_feedforward": 64}
    model = add_lora(build_lm(kwargs, seed=0), rank=2, alpha=4)
    _checkpoint(tmp_path, model, np.random.default_rng(0))
    saved = torch.load(tmp_path / STATE_FILE, weights_only=True)["modules"]["m"]
    params = dict(model.named_parameters())
    assert saved and all("lora_" in k for k in saved if k in params)
    assert not [k for k in saved if k in params and not params[k].requires_grad]


def test_resumed_budget_keeps_the_fixed_step_count(tmp_path):
    plan = StepPlan(1000, budget_s=10.0, probe=5)
    plan.fit(done=30, elapsed_s=2.0, per_step_s=1.0)  # -> 38 steps
    _checkpoint(tmp_path, _Half(), np.random.default_rng(0), plan, step=30)
    resumed = StepPlan(1000, budget_s=10.0, probe=5)
    module = _Half()
    start, _ = load_state(tmp_path, {"m": module}, torch.optim.SGD([module.lora_a], lr=0.1),
                          np.random.default_rng(0), resumed)
    assert (start, resumed.steps, resumed.probing) == (30, 38, False)
    done = []
    train_loop(resumed, start, lambda i: done.append(i) or {"loss": 0.0}, lambda s: None, 1000, "t")
    assert done == list(range(30, 38))  # no second probe (fast steps would have run to 1000)


def test_resumed_run_logs_each_step_once(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"step": i, "loss": 1.0}) + "\n" for i in range(6)) + '{"step": 6, "lo')
    train_loop(StepPlan(5), 3, lambda i: {"loss": 0.0}, lambda s: None, 1000, "t", log)
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4] and [r["loss"] for r in rows] == [1.0] * 3 + [0.0] * 2


# -- config values ---------------------------------------------------------------------------
@pytest.mark.parametrize("recipe, overrides, key", [
    ("codec", {"threads": "abc"}, "threads"),
    ("codec", {"betas": 0.5}, "betas"),
    ("codec", {"betas": [0.5, "x"]}, r"betas\[1\]"),
    ("evaluate", {"device": 123}, "device"),
    ("lora", {"erasures": {"p_min": "abc"}}, "erasures.p_min"),
    ("lora", {"erasures": {"kinds": {"token": "abc"}}}, "erasures.kinds.token"),
    ("lora", {"alpha": "abc"}, "alpha"),
    ("lora", {"steps": True}, "steps"),
    ("lm", {"lm_kwargs": {"dim": "abc"}}, "lm_kwargs.dim"),
    ("controller", {"quantizers": 5}, "quantizers"),
    ("controller", {"controller_kwargs": 3}, "controller_kwargs"),
    ("controller", {"budget_s": "soon"}, "budget_s"),
])
def test_config_values_of_the_wrong_type_are_refused(recipe, overrides, key):
    with pytest.raises(UserError, match=f"config {key}=") as err:
        load_config(recipe, overrides=overrides)
    assert "\n" not in str(err.value)


def test_config_values_of_the_right_type_pass():
    cfg = load_config("lora", overrides={"max_minutes": 0.15, "lr": 1, "erasures": {"burst": 2.5}, "budget_s": 60})
    assert cfg["max_minutes"] == 0.15 and cfg["erasures"]["burst"] == 2.5
    assert load_config("controller", overrides={"lora": None, "controller_kwargs": {"n_q": 8}})["lora"] is None
    # `--set lr=1e-3` reaches the config as the string '1e-3' (YAML 1.1 wants a dot): a real number here
    assert load_config("lora", overrides={"lr": "1e-3"})["lr"] == 1e-3


@pytest.mark.parametrize("recipe, overrides, match", [
    ("codec", {"warmup": -5}, "warmup=-5"),
    ("codec", {"betas": [0.5, 1.5]}, "betas="),
    ("lm", {"lm_kwargs": {"dim": 0}}, "lm_kwargs.dim=0"),
    ("lora", {"threads": -1}, "threads=-1"),
    ("lora", {"alpha": 0}, "alpha=0"),
    ("controller", {"rank": 0, "lora": None}, "rank=0"),
    ("controller", {"lora": "/nonexistent"}, "lora='/nonexistent'"),
    ("controller", {"p_min": 0.3, "p_max": 0.1}, "p_min=0.3, p_max=0.1"),
    ("controller", {"quantizers": [1, 2, 3]}, r"quantizers=\[1, 2, 3\]"),
])
def test_recipes_check_ranges_before_training(recipe, overrides, match):
    from importlib import import_module

    module = {"codec": "codec", "lm": "lm", "lora": "conceal", "controller": "controller"}[recipe]
    base = {"lora": None} if recipe == "controller" and "lora" not in overrides else {}
    with pytest.raises(UserError, match=match) as err:
        import_module(f"simlab.train.{module}").check(load_config(recipe, overrides={**base, **overrides}))
    assert "\n" not in str(err.value)


def test_ship_dir_is_refused_for_a_base_that_is_not_the_small_layout(tmp_path):
    from simlab.train.controller import train_controller

    base = tmp_path / "base"
    base.mkdir()
    (base / "profile.yaml").write_text("name: big\nmimi: {kwargs: full}\nlm: {kwargs: small, dtype: bfloat16}\n")
    cfg = load_config("controller", overrides={"profile": str(base), "lora": None, "device": "cpu",
                                               "out_dir": str(tmp_path / "out"), "ship_dir": str(tmp_path / "ship")})
    with pytest.raises(UserError, match="ship_dir packages the small profile only.*adapter"):
        train_controller(cfg)
    assert not (tmp_path / "out").exists() and not (tmp_path / "ship").exists()


# -- command line ----------------------------------------------------------------------------
@pytest.mark.parametrize("recipe, key", [("lm", "stage_dir"), ("controller", "ship_dir")])
def test_output_folders_are_checked_before_training(recipe, key, tmp_path, capsys):
    from simlab.train.cli import main

    rc = main([recipe, "--set", f"out_dir={tmp_path / 'out'}", "--set", f"cache_dir={tmp_path / 'cache'}",
               "--set", f"{key}=/dev/null/x"])
    err = capsys.readouterr().err
    assert rc == 2 and "/dev/null/x" in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing half-written


# Ctrl-C's handler set explicitly: a test run in a background job inherits SIGINT ignored (POSIX
# shells do that to `cmd &`), and Python then never raises KeyboardInterrupt at all.
_SLOW_RECIPE = textwrap.dedent("""
    import signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import simlab.train.cli as cli
    def run(args):
        print("ready", flush=True)
        time.sleep(60)
    cli.run = run
    sys.exit(cli.main(["codec"]))
""")


@pytest.mark.parametrize("sig, rc", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_python_m_simlab_train_ends_on_an_interrupt_without_a_traceback(sig, rc):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_RECIPE], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == rc and err.strip() == "simlab: interrupted"


def test_a_moshiko_folder_that_does_not_exist_is_not_a_hub_repo(tmp_path):
    from simlab.models.profiles import get_profile

    for source in (str(tmp_path / "nope"), "./nope", "~/nope", "a/b/c"):
        with pytest.raises(UserError, match=f"moshiko folder {source}: not found"):
            get_profile(f"moshiko:{source}")
