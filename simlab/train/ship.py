"""Writing the shipped small profile (``simlab/models/small/``) and its reference outputs.

Storage: every tensor in float16, cast back to float32 at load (the profile says
``lm.dtype: float32``; Mimi's, the controller's and the adapter's parameters are float32
and `load_state_dict` copies into them), which keeps everything under the package's 40 MB
budget. The adapter files
lie in the folder itself (``lm.lora: "."``) so the package data glob ``models/small/*``
carries them.

``reference.json`` records what the shipped weights give on a fixed input (the shipped
clip's first frames): tokens, a mask and concealed tokens exactly, decoded audio as rounded
statistics. `tests/test_train.py` loads ``load_profile("small")`` and compares.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from simlab.models.checkpoint import load_state_dict, save_state_dict
from simlab.train.profile_io import write_profile

REFERENCE_FILE = "reference.json"
REFERENCE_FRAMES = 8


def _half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def halve_files(paths: list[str]) -> None:
    """Rewrite each safetensors file in float16 (what ships; half the bytes to carry)."""
    for path in paths:
        if Path(path).is_file():
            save_state_dict(_half(load_state_dict(path)), path)


def write_adapter_config(src: Path, dst: Path) -> None:
    """peft's adapter config with its module list sorted: peft keeps ``target_modules`` as a
    set, so its saved order changes from process to process (string hashing), and the shipped
    file should not change when the adapter did not."""
    config = json.loads(Path(src).read_text())
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    Path(dst).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def ship(config: dict, profile, stage_out: Path) -> Path:
    """Write the shipped folder ``config['ship_dir']`` from the staging profile and the
    stage-2 outputs in ``stage_out``; returns the folder."""
    folder = Path(config["ship_dir"]).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    save_state_dict(_half(load_state_dict(profile.mimi_checkpoint)), folder / "mimi.safetensors")
    save_state_dict(_half(load_state_dict(profile.lm_checkpoint)), folder / "lm.safetensors")
    write_adapter_config(stage_out / "adapter" / "adapter_config.json", folder / "adapter_config.json")
    for src, dst in ((stage_out / "adapter" / "adapter_model.safetensors", folder / "adapter_model.safetensors"),
                     (stage_out / "controller.safetensors", folder / "controller.safetensors")):
        save_state_dict(_half(load_state_dict(src)), dst)
    write_profile(folder, "small", folder / "mimi.safetensors", folder / "lm.safetensors", profile.lm_kwargs,
                  lora=folder, controller=folder / "controller.safetensors",
                  controller_kwargs=dict(config["controller_kwargs"]), lm_dtype="float32", trained=True)
    write_reference(folder)
    for f in folder.iterdir():
        if f.is_file():
            f.chmod(0o644)  # safetensors writes 0600; package data is world-readable
    return folder


def reference_outputs(models) -> dict:
    """Outputs of loaded models on the shipped clip's first `REFERENCE_FRAMES` frames: Mimi's
    tokens, the controller's masks (p̂ = 0.2, L = 8), the LM concealer's output with every
    frame's tokens 2, 5 and 7 missing, and the decoded audio's RMS and first samples."""
    from simlab.actors.concealer import LMConcealer
    from simlab.actors.mimi import MimiCodec
    from simlab.audio import SHIPPED_CLIP, read_audio
    from simlab.models.mimi_config import FRAME_SAMPLES

    audio = read_audio(SHIPPED_CLIP)
    codec = MimiCodec(models.mimi)
    models.controller.reset()
    tokens, masks = [], []
    for n in range(REFERENCE_FRAMES):
        t, z = codec.encode(audio[n * FRAME_SAMPLES:(n + 1) * FRAME_SAMPLES])
        tokens.append(t.tolist())
        masks.append(models.controller.decide(z, 0.2, 8).tolist())
    concealer = LMConcealer(models.lm)
    filled, prev = [], np.full(7, -1)
    for n in range(REFERENCE_FRAMES):
        row = np.array(tokens[n])
        row[[2, 5, 7]] = -1
        sem, acoustic = concealer.step(int(row[0]), prev)
        filled.append([int(sem)] + acoustic.tolist())
        prev = row[1:]
    codec.reset()
    decoded = np.concatenate([codec.decode(np.array(t)) for t in tokens])
    return {"tokens": tokens, "masks": masks, "concealed_steps": filled,
            "decoded_rms": round(float(np.sqrt(np.mean(decoded ** 2))), 5),
            "decoded_head": [round(float(v), 4) for v in decoded[FRAME_SAMPLES:FRAME_SAMPLES + 8]]}


def write_reference(folder: Path) -> Path:
    """Load the profile in ``folder`` on the CPU and record `reference_outputs`."""
    from simlab.models.profiles import load_profile

    with torch.no_grad():
        models = load_profile(str(folder), device="cpu")
        out = reference_outputs(models)
    path = folder / REFERENCE_FILE
    lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in out.items()]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    return path
