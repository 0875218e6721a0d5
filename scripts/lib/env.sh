# Sourced by the scripts in scripts/: where the tooling venv and the build live.
# The venv is keyed by the pinned requirements and the Python version, so every clone on a
# machine (and CI) shares one copy, and a change of pins builds a new one beside it.
GRPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
GRPO_PYTHON_BASE="${GRPO_PYTHON_BASE:-python3}"
GRPO_CACHE_DIR="${GRPO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/grpo}"
_grpo_pyver="$("$GRPO_PYTHON_BASE" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
_grpo_key="$(cat "$GRPO_ROOT/scripts/requirements.txt" | sha256sum | cut -c1-12)"
GRPO_VENV="${GRPO_VENV:-$GRPO_CACHE_DIR/venv-py${_grpo_pyver}-${_grpo_key}}"
GRPO_BUILD_DIR="${GRPO_BUILD_DIR:-$GRPO_ROOT/build}"
GRPO_DATA_DIR="${GRPO_DATA_DIR:-$GRPO_CACHE_DIR/data}"
export GRPO_ROOT GRPO_CACHE_DIR GRPO_VENV GRPO_BUILD_DIR GRPO_DATA_DIR
