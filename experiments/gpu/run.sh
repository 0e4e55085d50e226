#!/bin/bash
# The small profile trained on one lent GPU (H100/H200) in about 9 minutes:
#   bash experiments/gpu/run.sh SPEECH_DIR OUT_ROOT [--set KEY=VALUE ...]
# SPEECH_DIR: the training speech (../shared/speech/train, or its Opus copy made by
# pack_speech.py); OUT_ROOT: where each recipe writes (codec/, lm/, lora/, controller/, and
# ship/, the profile folder). Extra arguments go to every recipe (e.g. --set device=cpu).
# The per-recipe settings (batch, budget_s) are the YAML files beside this script.
set -euo pipefail
speech=$1; out=$2; shift 2
here=$(dirname "$0")
common=(--set "data=$speech" "$@")
stage=(--set "profile=$out/stage-lm" --set "cache_dir=$out/cache")
python3 -m simlab.train codec --config "$here/codec.yaml" "${common[@]}" --set "out_dir=$out/codec"
python3 -m simlab.train lm --config "$here/lm.yaml" "${common[@]}" --set "codec=$out/codec/mimi.safetensors" \
    --set "cache_dir=$out/cache" --set "out_dir=$out/lm" --set "stage_dir=$out/stage-lm"
python3 -m simlab.train lora --config "$here/lora.yaml" "${common[@]}" "${stage[@]}" --set "out_dir=$out/lora"
python3 -m simlab.train controller --config "$here/controller.yaml" "${common[@]}" "${stage[@]}" \
    --set "lora=$out/lora/adapter" --set "out_dir=$out/controller" --set "ship_dir=$out/ship"
