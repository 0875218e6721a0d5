#!/usr/bin/env bash
# One-time, idempotent set-up of a fresh machine: Debian -dev packages, the Python tooling venv
# (torch==2.11.0 for LibTorch, plus the reference libraries the tests compare against), then a
# CMake configure + build. Every step is skipped when already done.
#   scripts/setup.sh               everything: the whole venv, the assets, every target (scripts/test.sh)
#   scripts/setup.sh --quickstart  what the main job needs: torch only in the venv, no assets, and
#                                  only the grpo executable and its sandbox init (scripts/quickstart.sh);
#                                  a later full set-up adds the rest to the same venv and build
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
SCOPE=all
[ "${1:-}" = "--quickstart" ] && SCOPE=quickstart

DEB_PACKAGES=(
  cmake ninja-build g++ pkg-config
  libsentencepiece-dev nlohmann-json3-dev libspdlog-dev libcli11-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev libseccomp-dev libre2-dev libginac-dev gnuplot-nox nettle-dev
)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The venv in two markers: .grpo-torch (torch, all the build needs) and .grpo-complete (every pin).
if [ ! -f "$GRPO_VENV/.grpo-complete" ]; then
  if [ ! -f "$GRPO_VENV/.grpo-torch" ]; then
    echo "[setup] creating the tooling venv at $GRPO_VENV (torch 2.11.0 for LibTorch; takes a few minutes once)"
    rm -rf "$GRPO_VENV"
    mkdir -p "$(dirname "$GRPO_VENV")"
    "$GRPO_PYTHON_BASE" -m venv "$GRPO_VENV"
    "$GRPO_VENV/bin/pip" install -q --upgrade pip
    "$GRPO_VENV/bin/pip" install -q "$(grep -E '^torch==' "$GRPO_ROOT/scripts/requirements.txt")"
    touch "$GRPO_VENV/.grpo-torch"
  fi
  if [ "$SCOPE" = all ]; then
    echo "[setup] installing the reference libraries the tests compare against into $GRPO_VENV"
    "$GRPO_VENV/bin/pip" install -q -r "$GRPO_ROOT/scripts/requirements.txt"
    touch "$GRPO_VENV/.grpo-complete"
  fi
fi

if [ "$SCOPE" = all ]; then
  "$GRPO_ROOT/scripts/fetch_assets.sh"
  "$GRPO_ROOT/scripts/build.sh"
else
  # The main job runs the grpo executable only; the tests and benchmarks are scripts/test.sh's.
  GRPO_BUILD_TARGETS="grpo_exe grpo_sandbox_init" "$GRPO_ROOT/scripts/build.sh"
fi
