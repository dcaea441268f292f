#!/usr/bin/env bash
# CI: executes every notebook top to bottom headless (nbconvert + tslab kernel, quick profile)
# and fails on an error in any cell. Data: $UTKFACE_DIR if set, else data/UTKFace, else data/sample.
set -euo pipefail
cd "$(dirname "$0")/.."

# Jupyter (nbconvert, nbclient, ipykernel) and Chromium from Debian when running as root.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=""
  for pkg in jupyter-nbconvert python3-nbclient python3-ipykernel chromium; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
  done
  if [ -n "$missing" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  fi
fi
# Debian's jupyter runs on /usr/bin/python3; prefer it over a pyenv/venv shim without nbconvert.
if [ -z "${JUPYTER:-}" ] && [ -x /usr/bin/jupyter ]; then export JUPYTER=/usr/bin/jupyter; fi

[ -d node_modules ] || npm ci --no-audit --no-fund

# npm start builds dist/, registers the tslab kernel in .cache/jupyter (project-local) and
# runs every notebook; it exits non-zero if any cell of any notebook fails.
export EXPERIMENT_PROFILE="${EXPERIMENT_PROFILE:-quick}"
npm start
