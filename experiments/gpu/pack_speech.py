"""Pack the training speech as Ogg Opus (~41 kbit/s) so it fits the 64 MiB that travels to a
lent GPU machine (the FLAC originals are 160 MB).

    python experiments/gpu/pack_speech.py OUT_DIR [--level 0.86]

Every audio file under ``../shared/speech/train`` is re-encoded by libsndfile's Opus encoder
at its own sample rate (16 kHz), keeping LibriSpeech's relative paths. ``--level`` is
libsndfile's compression level (0.86: ~41 kbit/s, waveform SNR ~19 dB on LibriSpeech; Opus
is perceptual, so far above what the 1.1 kbit/s codec trained on it can reproduce).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import soundfile as sf

from simlab.train.data import list_files, speech_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--sub", default="train")
    ap.add_argument("--level", type=float, default=0.86)
    args = ap.parse_args(argv)
    root = speech_dir(args.sub)
    out = Path(args.out_dir)
    total = 0
    for src in list_files(args.sub):
        x, sr = sf.read(str(src), dtype="float32")
        dst = (out / src.relative_to(root)).with_suffix(".opus")
        dst.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(dst), x, sr, format="OGG", subtype="OPUS", compression_level=args.level)
        total += dst.stat().st_size
    print(f"{out}: {total / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
