#!/usr/bin/env bash
# The independent ActivityPub implementations the interop tests run as peers (tests/federation/test_bovine_peer.py),
# in a venv of their own: bovine and bovine-herd pin cryptography<46, which the hub's .venv cannot take.
# Idempotent: a venv already installed at these pins is left alone. Usage: tests/peers_venv.sh [VENV_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-peers}"
PINS="bovine==0.5.19 bovine-herd==0.5.19 bovine-store==0.5.19 bovine-process==0.5.19 hypercorn"
if [ -f "$VENV/.installed" ] && [ "$(cat "$VENV/.installed")" = "$PINS" ]; then
  exit 0
fi
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m venv "$VENV"
# shellcheck disable=SC2086 # PINS is a list of requirements
"$VENV/bin/pip" install -q --disable-pip-version-check $PINS
echo "$PINS" > "$VENV/.installed"
echo "peers venv ready: $VENV ($PINS)"
