#!/bin/sh
# Installs the player's npm dependencies (npm ci, when node_modules is missing
# or older than package-lock.json) and copies the pinned hls.js ES module to
# vendor/hls.mjs, checking its version and sha256 against vendor.lock.
# Idempotent: safe to run again; it only re-runs npm ci when the lockfile changed.
set -eu
cd "$(dirname "$0")"

die() { echo "install.sh: $*" >&2; exit 1; }

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

lock_sum=$(sha256 package-lock.json)
stamp=node_modules/.bardcast-lock.sha256
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  npm ci --no-audit --no-fund
  echo "$lock_sum" > "$stamp"
fi

want_version=$(sed -n 's/^version=//p' vendor.lock)
want_sum=$(sed -n 's/^sha256=//p' vendor.lock)
[ -n "$want_version" ] && [ -n "$want_sum" ] || die "vendor.lock lacks version= or sha256="

src=node_modules/hls.js/dist/hls.mjs
[ -f "$src" ] || die "$src is missing after npm ci"
have_version=$(node -p 'require("./node_modules/hls.js/package.json").version')
[ "$have_version" = "$want_version" ] || die "hls.js $have_version installed, vendor.lock pins $want_version"
have_sum=$(sha256 "$src")
[ "$have_sum" = "$want_sum" ] || die "hls.mjs sha256 $have_sum does not match vendor.lock ($want_sum)"

mkdir -p vendor
if [ ! -f vendor/hls.mjs ] || [ "$(sha256 vendor/hls.mjs)" != "$want_sum" ]; then
  cp "$src" vendor/hls.mjs.tmp
  mv vendor/hls.mjs.tmp vendor/hls.mjs
fi
echo "install.sh: vendor/hls.mjs is hls.js $want_version ($want_sum)"
