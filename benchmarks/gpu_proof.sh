#!/usr/bin/env bash
# The GPU proof: one command, <= 8 minutes on one H100, run the first time a GPU is lent.
#
#   benchmarks/gpu_proof.sh [OUT]                  # on the GPU machine, from the repository root
#   benchmarks/gpu_proof.sh --cpu-rehearsal [OUT]  # tiny sizes on CPU (the test suite runs this)
#
# OUT defaults to $OUT (the device tool's output folder) or benchmarks/out/gpu_proof-<time>.
# Sections: environment, the GPU-marked tests, `bench speed` (IR-50, batch 512, bf16,
# channels_last) with the CPU JPEG decoder and with nvJPEG, and ~300 steps of the real training
# loop on a generated RecordIO. Each section has its own time limit, runs whatever happened
# before it, and records its exit code and seconds in OUT/sections.jsonl; its output is
# OUT/<section>.log. OUT/summary.md gathers the figures for docs/PERFORMANCE.md.
#
# The GPU machine has torch, torchvision, numpy, Pillow and onnxruntime but maybe not the rest
# of our pure-Python dependencies: `make gpu-deps` unpacks them into .gpu_deps/, which travels
# with the working tree (device tool: carry [".gpu_deps"]) and is put on PYTHONPATH here.
set -u
cd "$(dirname "$0")/.."

mode=gpu
if [[ "${1:-}" == "--cpu-rehearsal" ]]; then
  mode=cpu
  shift
fi
out="${1:-${OUT:-benchmarks/out/gpu_proof-$(date +%Y%m%d-%H%M%S)}}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
python="${PYTHON:-python3}"
[[ -x .venv/bin/python && -z "${PYTHON:-}" ]] && python=.venv/bin/python
[[ -d .gpu_deps ]] && export PYTHONPATH="$PWD/.gpu_deps${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
: > "$out/sections.jsonl"

# section NAME SECONDS COMMAND...: run with a time limit, log to OUT/NAME.log, never stop the script.
section() {
  local name="$1" limit="$2"
  shift 2
  local start=$SECONDS
  echo "== $name (limit ${limit}s)"
  timeout --kill-after=10 "$limit" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  printf '{"section": "%s", "rc": %d, "seconds": %d}\n' "$name" "$rc" $((SECONDS - start)) \
    >> "$out/sections.jsonl"
  [[ $rc -ne 0 ]] && echo "   $name failed (rc $rc): see $out/$name.log" && tail -n 5 "$out/$name.log"
  return 0
}

if [[ $mode == gpu ]]; then
  speed_common=(--device cuda --backbone ir50 --batch-size 512 --amp bf16 --channels-last --workers 16)
  speed_cpu=("${speed_common[@]}" --decoder simplejpeg --steps 50 --records 16384)
  speed_gpu=("${speed_common[@]}" --decoder gpu --steps 50 --records 16384 --eval-sets "" --parity-steps 2)
  train_args=()
  gpu_tests=(tests)
  limits=(30 90 170 110 150)
else
  speed_common=(--device cpu --backbone ir18 --width 8 --embedding-size 32 --num-classes 50 --batch-size 8 --workers 1 --threads 1)
  speed_cpu=("${speed_common[@]}" --decoder pil --steps 2 --warmup 1 --records 32 --eval-sets lfw --eval-pairs 20 --eval-batch 16 --parity-steps 2)
  speed_gpu=("${speed_common[@]}" --decoder auto --steps 2 --warmup 1 --records 32 --eval-sets "" --parity-steps 1)
  train_args=(--cpu-rehearsal)
  gpu_tests=(tests/eval/test_embed.py)  # collecting one file is enough to rehearse the section
  limits=(60 300 300 300 300)
fi

section environment "${limits[0]}" "$python" benchmarks/proof_environment.py
section gpu_tests "${limits[1]}" "$python" -m pytest -q -p no:cacheprovider -m gpu "${gpu_tests[@]}"
section speed_cpu_decoder "${limits[2]}" "$python" -m bench speed "${speed_cpu[@]}" --out "$out/speed_cpu_decoder.json"
section speed_nvjpeg "${limits[3]}" "$python" -m bench speed "${speed_gpu[@]}" --out "$out/speed_nvjpeg.json"
section train "${limits[4]}" "$python" benchmarks/proof_train.py --out "$out/train" "${train_args[@]}"
"$python" benchmarks/proof_summary.py "$out" > "$out/summary.md" 2> "$out/summary.log" \
  || echo "summary failed: see $out/summary.log"
cat "$out/summary.md" 2>/dev/null
echo "proof written to $out"
