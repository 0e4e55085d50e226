"""``python -m simlab.batch EXPERIMENT --out DIR [-j N] [--dask ADDRESS|local]``: the ``batch``
subcommand of the ``simlab`` command."""
import sys

if __name__ == "__main__":  # spawned workers import this module too: run only when executed
    from simlab.cli import main

    sys.exit(main(["batch", *sys.argv[1:]]))
