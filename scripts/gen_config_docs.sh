#!/usr/bin/env bash
# Regenerates docs/config.md from the config structs (build/bin/grpo config docs). Run it after
# changing anything in include/grpo/config/; tests/cli/config_docs_test.cpp fails until you do.
#   scripts/gen_config_docs.sh            (builds bin/grpo first)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cmake --build "$GRPO_BUILD_DIR" --target grpo_exe >/dev/null
"$GRPO_BUILD_DIR/bin/grpo" config docs > "$GRPO_ROOT/docs/config.md.tmp"
mv "$GRPO_ROOT/docs/config.md.tmp" "$GRPO_ROOT/docs/config.md"
echo "wrote docs/config.md"
