"""Model profiles: which Mimi, LM (+ LoRA adapter) and controller a run uses, and loading them.

Three kinds of profile name:

- ``small``: moshi's real classes with small configurations. Trained weights are shipped in
  ``simlab/models/small/`` (a folder profile) once they exist; until then every model is
  randomly initialised from ``seed``, ``trained=False``, and a loud warning says that no
  result from it is a quality result.
- ``moshiko`` (or ``moshiko:<repo id or folder>``): Kyutai's real weights, from the Hugging
  Face hub repo ``kyutai/moshiko-pytorch-bf16`` or a local folder holding its two files.
  The LM is built from the explicit `MOSHIKO_LM_KWARGS` (the repo has no config, and moshi's
  own loader would silently fall back to defaults). No controller is shipped: it is random.
- a folder holding ``profile.yaml`` (see `docs/models.md`), naming the files and kwargs.

Weights are read with `simlab.models.checkpoint` only (safetensors; never unpickled).
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("NO_TORCH_COMPILE", "1")  # moshi compiles on first call otherwise (~20 s)

import torch  # noqa: E402

from simlab.errors import UserError  # noqa: E402
from simlab.models import lm_config  # noqa: E402  (attributes read at call time: tests patch them)
from simlab.models.checkpoint import load_state_dict  # noqa: E402
from simlab.models.mimi_config import (build_mimi, drop_codebook_cache, full_mimi_kwargs,  # noqa: E402
                                       randomize_codebooks, small_mimi_kwargs)

PROFILE_FILE = "profile.yaml"
SMALL_DIR = Path(__file__).with_name("small")
MOSHIKO_REPO = "kyutai/moshiko-pytorch-bf16"
MOSHIKO_MIMI_FILE = "tokenizer-e351c8d8-checkpoint125.safetensors"
MOSHIKO_LM_FILE = "model.safetensors"
#: Mimi kwargs for moshiko; None = the full-size configuration (`moshi.models.loaders`).
MOSHIKO_MIMI_KWARGS: dict | None = None
MOSHIKO_LM_DTYPE = "bfloat16"  # the checkpoint's own dtype

UNTRAINED_WARNING = ("UNTRAINED RANDOM MODEL: profile {name!r} has no trained weights for {parts}; "
                     "they are randomly initialised from seed {seed}. No result from it is a quality "
                     "result (speech quality, WER, concealment accuracy); only timing and bit accounting are.")

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_YAML_KEYS = {"": {"name", "trained", "mimi", "lm", "controller"},
              "mimi": {"checkpoint", "kwargs"},
              "lm": {"checkpoint", "kwargs", "lora", "dtype"},
              "controller": {"checkpoint", "kwargs"}}


@dataclass
class Profile:
    """Where a run's models come from. A ``None`` checkpoint means random init from the seed."""

    name: str
    mimi_checkpoint: Path | None
    mimi_kwargs: dict | None  # None: full-size Mimi
    lm_checkpoint: Path | None
    lm_kwargs: dict
    lora_adapter: Path | None = None
    controller_checkpoint: Path | None = None
    trained: bool = False  # the profile claims trained weights (still false if anything is random)
    controller_kwargs: dict = field(default_factory=dict)
    lm_dtype: str = "float32"
    source: str = ""  # hub repo, folder or "builtin"


@dataclass
class Models:
    """The loaded models of one run, shared by every actor that needs them."""

    mimi: torch.nn.Module
    lm: torch.nn.Module
    controller: torch.nn.Module
    profile: Profile
    device: str
    trained: bool
    warnings: list[str] = field(default_factory=list)
    random_parts: list[str] = field(default_factory=list)  # components initialised from the seed
    seed: int = 0

    def describe(self) -> dict:
        """What the run manifest records about the models."""
        p = self.profile

        def src(path, part):
            return f"random(seed={self.seed})" if part in self.random_parts else str(path)

        return {
            "profile": p.name,
            "source": p.source,
            "trained": self.trained,
            "device": self.device,
            "mimi": src(p.mimi_checkpoint, "mimi"),
            "mimi_config": _config_label(p.mimi_kwargs),
            "lm": src(p.lm_checkpoint, "lm"),
            "lm_dtype": p.lm_dtype,
            "lm_config": _config_label(p.lm_kwargs),
            "lora": str(p.lora_adapter) if p.lora_adapter else None,
            "controller": src(p.controller_checkpoint, "controller"),
            "params_mimi": _count(self.mimi),
            "params_lm": _count(self.lm),
            "params_controller": _count(self.controller),
            "warnings": list(self.warnings),
        }


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; a CUDA device that is not there is refused."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"device {device!r}: CUDA is not available on this machine (use 'cpu' or 'auto')")
        return device
    raise UserError(f"device {device!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'")


def get_profile(name_or_folder: str) -> Profile:
    """The `Profile` a name stands for (no weights are read; hub files are fetched)."""
    if not isinstance(name_or_folder, str) or not name_or_folder:
        raise UserError(f"model profile {name_or_folder!r}: expected 'small', 'moshiko[:repo|folder]' or a folder")
    if name_or_folder == "small":
        if (SMALL_DIR / PROFILE_FILE).is_file():
            return read_profile_folder(SMALL_DIR, name="small")
        return Profile("small", None, small_mimi_kwargs(), None, lm_config.small_lm_kwargs(),
                       trained=False, source="builtin")
    if name_or_folder == "moshiko" or name_or_folder.startswith("moshiko:"):
        return moshiko_profile(name_or_folder.partition(":")[2] or MOSHIKO_REPO)
    folder = Path(name_or_folder).expanduser()
    if folder.is_dir():
        if (folder / PROFILE_FILE).is_file():
            return read_profile_folder(folder)
        if (folder / MOSHIKO_LM_FILE).is_file() and (folder / MOSHIKO_MIMI_FILE).is_file():
            return moshiko_profile(str(folder))
        raise UserError(f"model profile folder {folder}: no {PROFILE_FILE} (and not a moshiko folder "
                        f"with {MOSHIKO_MIMI_FILE} and {MOSHIKO_LM_FILE})")
    raise UserError(f"model profile {name_or_folder!r}: not 'small', 'moshiko[:repo|folder]' or an existing folder")


def moshiko_profile(source: str) -> Profile:
    """Kyutai's Moshiko from a local folder or a hub repo id (downloaded via huggingface_hub)."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        files = [folder / MOSHIKO_MIMI_FILE, folder / MOSHIKO_LM_FILE]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise UserError(f"moshiko folder {folder}: missing {', '.join(missing)}")
    elif _looks_like_path(source):
        raise UserError(f"moshiko folder {source}: not found (a folder holding {MOSHIKO_MIMI_FILE} and "
                        f"{MOSHIKO_LM_FILE}, or a hub repo id such as {MOSHIKO_REPO})")
    else:
        files = [_hub_file(source, f) for f in (MOSHIKO_MIMI_FILE, MOSHIKO_LM_FILE)]
    lm_kwargs = lm_config.MOSHIKO_LM_KWARGS
    if not isinstance(lm_kwargs, dict) or not lm_kwargs:
        raise UserError("moshiko: no explicit LM kwargs (MOSHIKO_LM_KWARGS); refusing moshi's default fallback")
    return Profile("moshiko", files[0], copy.deepcopy(MOSHIKO_MIMI_KWARGS), files[1], copy.deepcopy(lm_kwargs),
                   trained=True, lm_dtype=MOSHIKO_LM_DTYPE, source=str(source))


def _looks_like_path(source: str) -> bool:
    """A folder the user meant, not a hub repo id (``owner/name``: one slash, no leading . ~ /)."""
    return source.startswith(("/", ".", "~")) or source.count("/") > 1 or (os.sep != "/" and os.sep in source)


def _hub_file(repo: str, filename: str) -> Path:
    from huggingface_hub import hf_hub_download

    try:  # the local cache first: no network retries when the files are already there
        return Path(hf_hub_download(repo, filename, local_files_only=True))
    except Exception:
        pass
    offline = _hub_offline_reason()
    if offline:  # fail at once: the download would retry for ~20 s, warning at each try
        raise _hub_error(repo, filename, f"not in the local cache, and {offline}")
    try:
        return Path(hf_hub_download(repo, filename))
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise _hub_error(repo, filename, f"{type(exc).__name__}: {reason}") from None


def _hub_error(repo: str, filename: str, why: str) -> UserError:
    return UserError(f"moshiko: cannot get {filename} from the Hugging Face hub repo {repo!r} ({why}); "
                     f"download the repo and use 'moshiko:<folder>'")


_PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def _hub_offline_reason(timeout_s: float = 3.0) -> str | None:
    """Why the hub cannot be reached (HF_HUB_OFFLINE, or no connection to its endpoint within
    ``timeout_s``), or None. Behind a proxy the download itself is left to find out."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    if any(os.environ.get(v) for v in _PROXY_VARIABLES):
        return None
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout_s).close()
    except OSError as exc:
        return f"the hub ({url.hostname}) is unreachable ({type(exc).__name__})"
    return None


def read_profile_folder(folder: Path, name: str | None = None) -> Profile:
    """A `Profile` from ``folder/profile.yaml``; every error names the file and key."""
    from simlab.yaml_file import load_yaml

    path = folder / PROFILE_FILE
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({str(exc).splitlines()[0]})") from None
    spec = load_yaml(text, str(path))
    spec = {} if spec is None else spec
    _check_keys(spec, "", path)
    sections = {key: spec.get(key) or {} for key in ("mimi", "lm", "controller")}
    for key, section in sections.items():
        _check_keys(section, key, path)

    def file(section: str, key: str = "checkpoint") -> Path | None:
        value = sections[section].get(key)
        if value is None:
            return None
        p = (folder / str(value)).resolve()
        if not p.exists():
            raise UserError(f"{path}: {section}.{key}: {p} does not exist")
        return p

    mimi_kwargs = _kwargs(sections["mimi"].get("kwargs", "small"), "mimi", path)
    lm_kwargs = _kwargs(sections["lm"].get("kwargs", "small"), "lm", path)
    controller_kwargs = sections["controller"].get("kwargs") or {}
    if not isinstance(controller_kwargs, dict):
        raise UserError(f"{path}: controller.kwargs must be a mapping")
    dtype = sections["lm"].get("dtype", "float32")
    if dtype not in _DTYPES:
        raise UserError(f"{path}: lm.dtype {dtype!r} is not one of {', '.join(_DTYPES)}")
    trained = spec.get("trained", True)
    if not isinstance(trained, bool):
        raise UserError(f"{path}: trained must be true or false, got {trained!r}")
    return Profile(name or str(spec.get("name") or folder.name), file("mimi"), mimi_kwargs, file("lm"),
                   lm_kwargs, lora_adapter=file("lm", "lora"), controller_checkpoint=file("controller"),
                   trained=trained, controller_kwargs=dict(controller_kwargs), lm_dtype=dtype,
                   source=str(folder))


#: An LM checkpoint larger than this is built on the meta device and assigned (never twice in
#: memory); a smaller one is built for real and copied into (faster: no torch._dynamo import).
META_ABOVE_BYTES = 256 * 2**20


def load_profile(name_or_folder: str, device: str = "auto", seed: int = 0) -> Models:
    """Load the models of a profile onto ``device`` ('auto', 'cpu', 'cuda[:N]'), in eval mode.
    Components without a checkpoint are random from ``seed`` (reproducibly, without touching
    torch's global random state) and flagged in ``warnings`` and ``describe()``."""
    if not isinstance(seed, int) or seed < 0:
        raise UserError(f"seed {seed!r}: expected an int >= 0")
    dev = resolve_device(device)
    profile = get_profile(name_or_folder)
    random_parts: list[str] = []
    # Building modules before their weights are loaded (and peft's LoRA init) draws from
    # torch's global generators: fork them so loading leaves the caller's state untouched.
    with torch.random.fork_rng(devices=[dev] if dev.startswith("cuda") else []):
        mimi = _load_mimi(profile, dev, seed, random_parts)
        lm = _load_lm(profile, dev, seed, random_parts)
        controller = _load_controller(profile, dev, seed, random_parts)
    warnings = []
    if random_parts:
        warnings.append(UNTRAINED_WARNING.format(name=profile.name, parts=", ".join(random_parts), seed=seed))
    trained = profile.trained and not random_parts
    if profile.trained and not profile.lora_adapter and profile.name == "moshiko":
        warnings.append("moshiko: the LM is Kyutai's base model, not LoRA-tuned for concealment")
    return Models(mimi, lm, controller, profile, dev, trained, warnings, random_parts, seed)


def _load_mimi(profile: Profile, device: str, seed: int, random_parts: list[str]):
    if profile.mimi_checkpoint is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            mimi = build_mimi(profile.mimi_kwargs, device)
        randomize_codebooks(mimi, torch.Generator().manual_seed(seed))
        random_parts.append("mimi")
        return mimi
    mimi = build_mimi(profile.mimi_kwargs, device)
    _load_into(mimi, profile.mimi_checkpoint, "mimi", device)
    drop_codebook_cache(mimi)
    return mimi.eval()


def _load_lm(profile: Profile, device: str, seed: int, random_parts: list[str]):
    dtype = _DTYPES[profile.lm_dtype]
    if profile.lm_checkpoint is None:
        lm = lm_config.build_lm(profile.lm_kwargs, device=device, dtype=dtype, seed=seed)
        random_parts.append("lm")
    else:
        state = load_state_dict(profile.lm_checkpoint, device=device)
        state = {k: v.to(dtype) if v.dtype.is_floating_point else v for k, v in state.items()}
        if profile.lm_checkpoint.stat().st_size > META_ABOVE_BYTES:
            # Built on the meta device and filled by assignment, as moshi's loader does: a 7 B
            # model never exists twice in memory.
            lm = lm_config.build_lm(profile.lm_kwargs, device="meta", dtype=dtype, seed=None)
            _assign(lm, state, profile.lm_checkpoint, "lm")
        else:
            # A small LM is built for real and filled by copy: initialising on the meta device
            # goes through torch's Python references, which import torch._dynamo (~1 s).
            lm = lm_config.build_lm(profile.lm_kwargs, device=device, dtype=dtype, seed=None)
            _load_into(lm, profile.lm_checkpoint, "lm", device, state)
    if profile.lora_adapter is not None:
        from simlab.models.lora import load_lora

        lm = load_lora(lm, profile.lora_adapter)
    return lm.eval()


def _load_controller(profile: Profile, device: str, seed: int, random_parts: list[str]):
    from simlab.actors.controller import AdaptiveController

    try:
        controller = AdaptiveController(**profile.controller_kwargs, seed=seed)
    except TypeError as exc:
        raise UserError(f"profile {profile.name!r}: controller kwargs {profile.controller_kwargs}: {exc}") from None
    if profile.controller_checkpoint is None:
        random_parts.append("controller")
    else:
        _load_into(controller, profile.controller_checkpoint, "controller", "cpu")
    return controller.to(device).eval()


def _load_into(module: torch.nn.Module, path: Path, what: str, device: str, state: dict | None = None) -> None:
    state = load_state_dict(path, device=device) if state is None else state
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UserError(f"{path}: does not fit the {what} configuration ({_first_line(exc)})") from None


def _assign(module: torch.nn.Module, state: dict, path: Path, what: str) -> None:
    try:
        module.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise UserError(f"{path}: does not fit the {what} configuration ({_first_line(exc)})") from None
    left = [n for n, t in list(module.named_parameters()) + list(module.named_buffers()) if t.is_meta]
    if left:
        raise UserError(f"{path}: {what} tensors not in the checkpoint: {', '.join(left[:3])}")


def _kwargs(value, section: str, path: Path) -> dict | None:
    named = {"mimi": {"small": small_mimi_kwargs, "full": lambda: None},
             "lm": {"small": lm_config.small_lm_kwargs, "moshiko": lambda: copy.deepcopy(lm_config.MOSHIKO_LM_KWARGS)}}
    if isinstance(value, str):
        if value not in named[section]:
            raise UserError(f"{path}: {section}.kwargs {value!r} is not one of {', '.join(named[section])} or a mapping")
        return named[section][value]()
    if isinstance(value, dict):
        return dict(value)
    raise UserError(f"{path}: {section}.kwargs must be a name ({', '.join(named[section])}) or a mapping")


def _check_keys(spec, section: str, path: Path) -> None:
    where = f"{section}" if section else "top level"
    if not isinstance(spec, dict):
        raise UserError(f"{path}: {where} must be a mapping")
    unknown = sorted(set(spec) - _YAML_KEYS[section])
    if unknown:
        prefix = f"{section}." if section else ""
        raise UserError(f"{path}: unknown key {prefix}{unknown[0]} (allowed: {', '.join(sorted(_YAML_KEYS[section]))})")


def _config_label(kwargs: dict | None) -> str:
    if kwargs is None:
        return "full"
    known = (("small", small_mimi_kwargs()), ("small", lm_config.small_lm_kwargs()),
             ("full", full_mimi_kwargs()), ("full", lm_config.MOSHIKO_LM_KWARGS))
    return next((label for label, ref in known if kwargs == ref), "custom")


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "size mismatch" in line or "Missing key" in line or "Unexpected key" in line:
            return line[:200]
    return lines[0][:200] if lines else type(exc).__name__
