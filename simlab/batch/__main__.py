"""``python -m simlab.batch EXPERIMENT --out DIR [-j N] [--dask ADDRESS|local]``."""
import sys

from simlab.batch.cli import entry

if __name__ == "__main__":  # spawned workers import this module too: run only when executed
    sys.exit(entry())
