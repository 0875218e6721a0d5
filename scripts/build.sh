#!/usr/bin/env bash
# Configure (once) and build with Ninja. Extra arguments go to cmake's configure step, e.g.
#   scripts/build.sh -DGRPO_CUDA=OFF
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
if [ ! -f "$GRPO_BUILD_DIR/build.ninja" ] || [ $# -gt 0 ]; then
  cmake -S "$GRPO_ROOT" -B "$GRPO_BUILD_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE="${GRPO_BUILD_TYPE:-Release}" \
    -DGRPO_PYTHON="$GRPO_VENV/bin/python" "$@"
fi
cmake --build "$GRPO_BUILD_DIR" -- -k 0
