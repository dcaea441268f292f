#!/usr/bin/env bash
# Builds the optional oneDNN addon (native/) at `npm install` / `npm ci`: the engine that runs
# tfjs's convolutions on oneDNN (lib/engine/onednn). It needs a C++ compiler, make and
# libdnnl-dev; as root on Debian they are installed from Debian's packages first. Where the
# build cannot happen the install still succeeds: one line says why, and the library trains on
# the wasm kernels. UTKFACE_SKIP_NATIVE=1 skips the build.
set -uo pipefail
cd "$(dirname "$0")/.."
say() { echo "[utkface-ts native] $*"; }
if [ "${UTKFACE_SKIP_NATIVE:-}" = 1 ]; then
  say "skipped (UTKFACE_SKIP_NATIVE=1): the wasm kernels will be used"
  exit 0
fi
packages=(libdnnl-dev g++ make)
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
if command -v dpkg >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${packages[@]}"; do have "$p" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} from Debian's packages"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/dev/null 2>&1 ||
      say "apt-get could not install ${missing[*]}"
  fi
fi
if [ ! -f /usr/include/oneapi/dnnl/dnnl.hpp ] && [ ! -f /usr/local/include/oneapi/dnnl/dnnl.hpp ]; then
  say "oneDNN addon not built: libdnnl not found (Debian: apt-get install libdnnl-dev g++ make, then bash scripts/build-native.sh); training uses the wasm kernels, see README"
  exit 0
fi
if ! command -v g++ >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
  say "oneDNN addon not built: no C++ compiler or make (Debian: apt-get install g++ make, then bash scripts/build-native.sh); training uses the wasm kernels, see README"
  exit 0
fi
# npm hands its bundled node-gyp to lifecycle scripts; otherwise look beside npm itself.
gyp="${npm_config_node_gyp:-}"
if [ -z "$gyp" ] || [ ! -f "$gyp" ]; then
  npm_root="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
  for candidate in "$npm_root/node_modules/node-gyp/bin/node-gyp.js" "$npm_root/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"; do
    [ -f "$candidate" ] && gyp="$candidate" && break
  done
fi
if [ -z "$gyp" ] || [ ! -f "$gyp" ]; then
  say "oneDNN addon not built: npm's node-gyp not found; training uses the wasm kernels, see README"
  exit 0
fi
# Node's Debian package installs its headers under /usr/include/node: no header download.
nodedir=()
[ -f /usr/include/node/node_api.h ] && nodedir=(--nodedir=/usr)
log="$(mktemp)"
if (cd native && node "$gyp" rebuild "${nodedir[@]}") >"$log" 2>&1; then
  say "oneDNN addon built (native/build/Release/utkface_onednn.node)"
else
  say "oneDNN addon build failed; training uses the wasm kernels. Last lines of the build log:"
  tail -n 15 "$log" | sed 's/^/    /'
fi
rm -f "$log"
exit 0
