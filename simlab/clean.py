"""`simlab clean [DIR]`: remove the partial folders that killed runs left.

A run writes into a hidden sibling of its output folder (`simlab.out_path.partial_path`) and
renames it into place when complete; one killed with SIGKILL (or by a machine going down)
leaves it. The next run to the same output folder removes it, but one to another folder never
sees it: this command finds them under DIR, those of processes that no longer run, and removes
them, naming each. `simlab run` says when it sees some beside its output folder.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from simlab.errors import UserError
from simlab.out_path import stale_partials


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``clean`` on the ``simlab`` command's subparsers."""
    c = subparsers.add_parser("clean", help="remove the partial folders of killed runs under DIR",
                              description="Find the hidden partial folders (.NAME.partial-PID) that runs killed "
                                          "with SIGKILL left under DIR, and remove them.")
    c.add_argument("dir", nargs="?", default="results", metavar="DIR", help="where to look (default results/)")
    c.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    c.set_defaults(fn=main)
    return c


def main(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    if not root.is_dir():
        raise UserError(f"{root}: {'not a folder' if root.exists() else 'no such folder'}")
    found = stale_partials(root, recursive=True)
    for path in found:
        if not args.dry_run:
            shutil.rmtree(path)
        print(f"{'would remove' if args.dry_run else 'removed'} {path}")
    print(f"{len(found)} partial folder{'s' if len(found) != 1 else ''} of killed runs under {root}"
          f"{' (nothing removed)' if args.dry_run else ''}")
    return 0


def stale_note(out: Path) -> str | None:
    """A one-line note for `simlab run` when partial folders of killed runs lie beside ``out``."""
    found = stale_partials(out.parent)
    if not found:
        return None
    shown = ", ".join(p.name for p in found[:3]) + (", ..." if len(found) > 3 else "")
    return (f"{out.parent} holds {len(found)} partial folder{'s' if len(found) != 1 else ''} of killed runs "
            f"({shown}): simlab clean {out.parent} removes them")
