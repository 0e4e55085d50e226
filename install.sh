#!/usr/bin/env bash
# Installs simlab and everything it needs on a fresh Debian machine with Python 3.10+:
# system libraries (libopus for the Opus baseline, tshark for pcap checks), a CPU build of
# PyTorch, moshi without its pinned (CUDA) torch, and the package itself with all extras.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

if command -v apt-get >/dev/null; then
  $SUDO apt-get update -qq
  # tshark asks whether non-root users may capture: answer for it.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libopus0 libsndfile1 tshark espeak-ng sox >/dev/null
  # Codec2's c2enc/c2dec and liblc3's elc3/dlc3: the fidelity tests run those codecs alone with them
  # (simlab itself codes through the pycodec2 and lc3py wheels of the codecs extra).
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq codec2 liblc3-tools >/dev/null
  # The ffmpeg command line and Debian's OpenCORE AMR-NB: the ffmpeg system's fidelity tests run
  # G.711/G.722/G.726/G.723.1 and AMR-NB alone with them (simlab codes through PyAV's FFmpeg).
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg libopencore-amrnb0 >/dev/null
fi

# torch 2.13.0: the CPU wheel (an unpinned torch pulls a multi-GB CUDA build). With a GPU, install
# the CUDA build of the same version first; simlab picks CUDA when torch sees it.
"$PY" -m pip install -q "torch==2.13.0"
# moshi pins torch<2.10 but works with 2.13: install it without its dependencies (setup.cfg
# lists the ones moshi.models needs).
"$PY" -m pip install -q --no-deps "moshi==0.2.13"
"$PY" -m pip install -q -e ".[all]"
echo "simlab installed: $(command -v simlab)"
