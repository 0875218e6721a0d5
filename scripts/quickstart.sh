#!/usr/bin/env bash
# The README's main-job command: set up (idempotent), build, then the quickstart training run
# (configs/quickstart.yaml): tokenizer, task data, cold-start SFT, GRPO, held-out evaluation, plot,
# before/after table. A finished run is not redone: --resume auto finds its stages finished and
# prints the table again; an interrupted one continues from its newest valid checkpoint.
#   scripts/quickstart.sh [CONFIG] [key.path=value ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
"$GRPO_ROOT/scripts/setup.sh" --quickstart   # builds only what the run needs (scripts/test.sh builds the rest)
cd "$GRPO_ROOT"
CONFIG="${1:-configs/quickstart.yaml}"
shift || true
exec "$GRPO_BUILD_DIR/bin/grpo" train "$CONFIG" "$@" --resume auto
