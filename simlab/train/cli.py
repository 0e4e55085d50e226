"""`simlab train {codec,lm,lora,controller,evaluate}`: the recipes' command line.

``add_parser(subparsers)`` registers the `train` command on the main CLI's subparsers;
``main(argv)`` runs it alone (``python -m simlab.train ...``). Every recipe takes
``--config FILE`` (a YAML overriding the shipped `simlab/train/configs/<recipe>.yaml`),
``--set key=value`` (repeatable; value parsed as YAML; ``a.b=1`` for nested keys) and
``--resume`` (continue from the recipe's last checkpoint in its ``out_dir``).
"""
from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path

from simlab.errors import UserError
from simlab.out_path import check_out_dir, made_dirs
from simlab.train.config import RECIPES, load_config
from simlab.train.overrides import parse_overrides

HELP = {
    "codec": "train the small Mimi codec on real speech",
    "lm": "pretrain the small LM on the codec's token streams",
    "lora": "stage 1: LoRA-tune the LM of a profile for lost-token prediction (eq. 19)",
    "controller": "stage 2: train the controller end to end with the LM under loss (eq. 20)",
    "evaluate": "measure the trained models on the dev speech and write the model card tables",
}


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``train`` and its recipes; each recipe sets ``fn`` to `run`."""
    train = subparsers.add_parser("train", help="training recipes (small profile; LoRA/controller for any profile)")
    recipes = train.add_subparsers(dest="recipe", required=True)
    for name in RECIPES:
        p = recipes.add_parser(name, help=HELP[name])
        p.add_argument("--config", default=None, help="YAML overriding the shipped recipe config")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override one config key (value parsed as YAML; nested: a.b=1)")
        if name != "evaluate":
            p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in out_dir")
        p.set_defaults(fn=run)
    return train


#: Config keys naming folders a recipe writes (``stage_dir``: `train lm`'s staging profile;
#: ``ship_dir``: `train controller`'s shipped profile, when set).
FOLDER_KEYS = ("out_dir", "cache_dir", "stage_dir", "ship_dir")


def _folders(config: dict) -> list[Path]:
    """The folders the recipe writes (`FOLDER_KEYS`), checked before any speech or model is
    loaded, so a bad one fails at once and not at the first checkpoint or after training."""
    keys = [k for k in FOLDER_KEYS if config.get(k) is not None]
    for key in keys:
        if not isinstance(config[key], str):
            raise UserError(f"config {key}={config[key]!r}: must be a folder path")
    return [check_out_dir(Path(config[key]).expanduser()) for key in keys]


def run(args: argparse.Namespace) -> int:
    """Run the recipe named by ``args.recipe``."""
    config = load_config(args.recipe, args.config, parse_overrides(args.set))
    with ExitStack() as folders:
        for folder in _folders(config):  # removed again if the recipe fails before writing there
            folders.enter_context(made_dirs(folder))
        return _run_recipe(args, config)


def _run_recipe(args: argparse.Namespace, config: dict) -> int:
    resume = bool(getattr(args, "resume", False))
    if args.recipe == "codec":
        from simlab.train.codec import train_codec

        print(train_codec(config, resume=resume))
    elif args.recipe == "lm":
        from simlab.train.lm import train_lm

        print(train_lm(config, resume=resume))
    elif args.recipe == "lora":
        from simlab.train.conceal import train_lora

        print(train_lora(config, resume=resume))
    elif args.recipe == "controller":
        from simlab.train.controller import train_controller

        print(train_controller(config, resume=resume))
    else:
        from simlab.train.evaluate import evaluate

        print(evaluate(config))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m simlab.train``: errors, Ctrl-C and SIGTERM end it as they end `simlab train`
    (one line, exit status 2, 130 or 143; the checkpoint stays for ``--resume``)."""
    from simlab.cli_run import run_command

    parser = argparse.ArgumentParser(prog="python -m simlab.train")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    return run_command(lambda: args.fn(args), error_prefix="error: ")
