#!/usr/bin/env bash
# Lists the functions in src/ longer than 150 lines (docs/architecture.md: functions stay under
# ~150 lines unless that page names one and says why), using lizard from the tooling venv. lizard
# is pinned in scripts/requirements.txt (scripts/setup.sh installs it).
# Usage: scripts/check_function_length.sh [MAX_LINES]. Exit 1 when a function is longer.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
max="${1:-150}"
lizard="$GRPO_VENV/bin/lizard"
[ -x "$lizard" ] || { echo "no lizard in $GRPO_VENV: $GRPO_VENV/bin/pip install lizard" >&2; exit 2; }
# CSV columns: NLOC, CCN, tokens, params, length, location, file, name, long name, start, end.
"$lizard" "$GRPO_ROOT/src" --csv | "$GRPO_VENV/bin/python" -c '
import csv, sys
limit = int(sys.argv[1])
rows = [r for r in csv.reader(sys.stdin) if len(r) >= 11 and r[4].isdigit() and int(r[4]) > limit]
for r in rows:
    print(f"{r[6]}:{r[9]} {r[7]}: {r[4]} lines")
print(f"{len(rows)} function(s) over {limit} lines" if rows else f"no function over {limit} lines")
sys.exit(1 if rows else 0)
' "$max"
