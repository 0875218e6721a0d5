#!/usr/bin/env bash
# One-time, idempotent set-up of a fresh machine: Debian -dev packages, the Python tooling venv
# (torch==2.11.0 for LibTorch, plus the reference libraries the tests compare against), then a
# CMake configure + build. Every step is skipped when already done.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"

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

if [ ! -f "$GRPO_VENV/.grpo-complete" ]; then
  echo "[setup] creating the tooling venv at $GRPO_VENV (torch 2.11.0 and references; takes a few minutes once)"
  rm -rf "$GRPO_VENV"
  mkdir -p "$(dirname "$GRPO_VENV")"
  "$GRPO_PYTHON_BASE" -m venv "$GRPO_VENV"
  "$GRPO_VENV/bin/pip" install -q --upgrade pip
  "$GRPO_VENV/bin/pip" install -q -r "$GRPO_ROOT/scripts/requirements.txt"
  touch "$GRPO_VENV/.grpo-complete"
fi

"$GRPO_ROOT/scripts/fetch_assets.sh"
"$GRPO_ROOT/scripts/build.sh"
