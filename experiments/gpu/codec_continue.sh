#!/bin/bash
# Continue training the shipped small codec on one lent GPU and leave its fp16 weights, log and
# timing in OUT_DIR (the weights in parts of 15 MB: `cat mimi.safetensors.part-* > mimi.safetensors`):
#   bash experiments/gpu/codec_continue.sh SPEECH_DIR WORK_DIR OUT_DIR [--set KEY=VALUE ...]
# Settings: codec-continue.yaml beside this script (budget_s bounds the training time).
# Afterwards, on the CPU: the LM, LoRA and controller recipes on the new codec's tokens
# (the commands in simlab/models/small/MODEL_CARD.md, "How they were made").
set -uo pipefail
speech=$1; work=$2; out=$3; shift 3
here=$(dirname "$0")
mkdir -p "$work" "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
t0=$(date +%s)
python3 -m simlab.train codec --config "$here/codec-continue.yaml" --set "data=$speech" \
    --set "out_dir=$work/codec" "$@" > "$work/codec.log" 2>&1
echo "train codec exit $? after $(( $(date +%s) - t0 )) s"
tr '\r' '\n' < "$work/codec.log" | grep -E "budget|rror|minutes|safetensors" | tail -8
python3 -c "import sys; from simlab.train.ship import halve_files; halve_files(sys.argv[1:])" "$work/codec/mimi.safetensors" \
  && cp "$work/codec/log.jsonl" "$work/codec/time.txt" "$out"/ \
  && split -b 15000000 "$work/codec/mimi.safetensors" "$out/mimi.safetensors.part-"  # 16 MiB per file comes back
cp "$work/codec.log" "$out"/ 2>/dev/null
ls -la "$out"
