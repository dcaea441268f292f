#!/usr/bin/env bash
# Installs the system programs the notebooks and the browser tests need, from Debian's
# packages, when they are missing: Jupyter's nbconvert/nbclient/ipykernel, the classic Notebook
# web UI (`npm run notebook`, the web UI test), Chromium, strace (the test that proves figure
# export sends nothing off the machine), and a font (DejaVu) for the labels of annotated photos.
# As root on Debian it installs them; elsewhere it prints the exact command and exits 0, so
# `npm test` still runs everything that needs Node alone (CI=true makes a missing program an error).
set -euo pipefail
packages=(jupyter-nbconvert jupyter-notebook python3-nbclient python3-ipykernel chromium strace fonts-dejavu-core)
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
if ! command -v dpkg >/dev/null 2>&1; then
  echo "[system-deps] not a Debian system: install Jupyter (nbconvert, nbclient, ipykernel) and Chromium yourself; set JUPYTER and CHROMIUM_PATH if they are not on PATH."
  exit 0
fi
missing=()
for p in "${packages[@]}"; do have "$p" || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "[system-deps] installing ${missing[*]} from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "[system-deps] missing: ${missing[*]}. Install them with:"
  echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "${CI:-}" = true ]; then exit 1; fi
fi
