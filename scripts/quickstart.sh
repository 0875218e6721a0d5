#!/usr/bin/env bash
# The README's main-job command: set up (idempotent), build, and run the quickstart config.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
"$GRPO_ROOT/scripts/setup.sh"
cd "$GRPO_ROOT"
CONFIG="${1:-configs/quickstart.yaml}"
shift || true
"$GRPO_BUILD_DIR/bin/grpo" config check "$CONFIG" "$@"
"$GRPO_BUILD_DIR/bin/grpo" config show "$CONFIG" "$@"
