#!/usr/bin/env bash
# Builds the optional native addons (native/) at `npm install` / `npm ci`, each on its own, so
# a machine with one library and not the other still gets the addon it can build:
#   utkface_onednn  the engine that runs tfjs's convolutions on oneDNN (lib/engine/onednn);
#                   needs libdnnl-dev
#   utkface_jpeg    the JPEG decoder of the first (uncached) data load (lib/data/native-jpeg);
#                   needs libjpeg(-turbo)'s headers (libjpeg62-turbo-dev)
# Both need a C++ compiler and make; as root on Debian what is missing is installed from
# Debian's packages first. Where an addon cannot be built the install still succeeds: one line
# says why, and the library uses the wasm kernels (no oneDNN) or sharp (no JPEG addon).
# UTKFACE_SKIP_NATIVE=1 skips the build.
set -uo pipefail
cd "$(dirname "$0")/.."
say() { echo "[utkface-ts native] $*"; }
if [ "${UTKFACE_SKIP_NATIVE:-}" = 1 ]; then
  say "skipped (UTKFACE_SKIP_NATIVE=1): the wasm kernels and sharp will be used"
  exit 0
fi
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
if command -v dpkg >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in g++ make libdnnl-dev; do have "$p" || missing+=("$p"); done
  # Ubuntu names libjpeg-turbo's headers libjpeg-turbo8-dev; libjpeg-dev pulls in either.
  have libjpeg62-turbo-dev || have libjpeg-turbo8-dev || have libjpeg-dev || missing+=(libjpeg62-turbo-dev)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} from Debian's packages"
    apt-get update -qq >/dev/null 2>&1
    # One package at a time: one that this release lacks must not keep the others out.
    for p in "${missing[@]}"; do
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 && continue
      if [ "$p" = libjpeg62-turbo-dev ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libjpeg-dev >/dev/null 2>&1; then
        continue
      fi
      say "apt-get could not install $p"
    done
  fi
fi
header() { [ -f "/usr/include/$1" ] || [ -f "/usr/local/include/$1" ]; }
if ! command -v g++ >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
  say "native addons not built: no C++ compiler or make (Debian: apt-get install g++ make, then bash scripts/build-native.sh); training uses the wasm kernels and decoding sharp, see README"
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
  say "native addons not built: npm's node-gyp not found; training uses the wasm kernels and decoding sharp, see README"
  exit 0
fi
# Node's Debian package installs its headers under /usr/include/node: no header download.
nodedir=()
[ -f /usr/include/node/node_api.h ] && nodedir=(--nodedir=/usr)
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
rm -rf native/build
if ! (cd native && node "$gyp" configure "${nodedir[@]}") >"$log" 2>&1; then
  say "native addons not built: node-gyp configure failed; training uses the wasm kernels and decoding sharp. Last lines of its log:"
  tail -n 15 "$log" | sed 's/^/    /'
  exit 0
fi
# node-gyp's Makefile has one goal per target: each addon is built (and fails) on its own.
jobs="$(nproc 2>/dev/null || echo 2)"
build() {
  if (cd native/build && make -j "$jobs" BUILDTYPE=Release "$1") >"$log" 2>&1; then
    say "$2 built (native/build/Release/$1.node)"
  else
    say "$2 build failed; $3. Last lines of the build log:"
    tail -n 15 "$log" | sed 's/^/    /'
  fi
}
if header oneapi/dnnl/dnnl.hpp; then
  build utkface_onednn "oneDNN addon" "training uses the wasm kernels"
else
  say "oneDNN addon not built: libdnnl not found (Debian: apt-get install libdnnl-dev g++ make, then bash scripts/build-native.sh); training uses the wasm kernels, see README"
fi
if header jpeglib.h; then
  build utkface_jpeg "JPEG addon" "images are decoded with sharp"
else
  say "JPEG addon not built: libjpeg's headers not found (Debian: apt-get install libjpeg62-turbo-dev, then bash scripts/build-native.sh); images are decoded with sharp, see README"
fi
exit 0
