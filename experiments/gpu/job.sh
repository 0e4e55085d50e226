#!/bin/bash
# One lent-GPU session: train the whole small profile (run.sh) inside a wall-clock limit, then
# pack what was made into OUT as .tgz parts of at most 15 MB (whatever finished, even if a
# later recipe failed):
#   bash experiments/gpu/job.sh SPEECH_DIR WORK_DIR OUT_DIR LIMIT_S [--set KEY=VALUE ...]
speech=$1; work=$2; out=$3; limit=$4; shift 4
mkdir -p "$work" "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
t0=$(date +%s)
timeout "$limit" bash "$(dirname "$0")/run.sh" "$speech" "$work" "$@" > "$work/run.log" 2>&1
echo "run.sh exit $? after $(( $(date +%s) - t0 )) s"
tr '\r' '\n' < "$work/run.log" | grep -E "budget|error|Error|exit|safetensors|adapter$" | tail -20
# Keep the finished profile when there is one, else the stage weights (fp32 would not fit).
keep=(--exclude='*.pt' --exclude=cache --exclude='*.tmp*')
if [ -f "$work/ship/profile.yaml" ]; then
  keep+=(--exclude=codec/mimi.safetensors --exclude=lm/lm.safetensors --exclude=lm/lm-best.safetensors --exclude=stage-lm)
else
  python3 -c "import sys; from simlab.train.ship import halve_files; halve_files(sys.argv[1:])" "$work"/codec/mimi.safetensors "$work"/lm/lm*.safetensors || true
fi
tar czf - -C "$work" "${keep[@]}" . | split -b 15000000 - "$out/small.tgz.part-"
ls -la "$out"
