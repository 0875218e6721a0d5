#!/usr/bin/env bash
# Configure (once) and build with Ninja. Extra arguments go to cmake's configure step, e.g.
#   scripts/build.sh -DGRPO_CUDA=OFF
# GRPO_BUILD_TARGETS="grpo_exe grpo_sandbox_init" builds only those targets (default: all).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
if [ ! -f "$GRPO_BUILD_DIR/build.ninja" ] || [ $# -gt 0 ]; then
  cmake -S "$GRPO_ROOT" -B "$GRPO_BUILD_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE="${GRPO_BUILD_TYPE:-Release}" \
    -DGRPO_PYTHON="$GRPO_VENV/bin/python" "$@"
fi
# shellcheck disable=SC2086  # a space-separated list of targets
cmake --build "$GRPO_BUILD_DIR" ${GRPO_BUILD_TARGETS:+--target $GRPO_BUILD_TARGETS} -- -k 0
