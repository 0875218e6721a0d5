#!/usr/bin/env bash
# The README's test command: set up (idempotent), build, run every test through CTest.
# GPU tests skip with a message when no GPU is present.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
"$GRPO_ROOT/scripts/setup.sh"
cd "$GRPO_BUILD_DIR"
ctest --output-on-failure -j "${GRPO_TEST_JOBS:-2}" "$@"
