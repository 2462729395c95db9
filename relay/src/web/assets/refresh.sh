#!/usr/bin/env bash
# Fetches the pinned mpegts.js from the npm registry, checks the tarball
# against the registry's sha512 integrity, and copies the browser build and
# its licences next to this script. Run it from anywhere; needs npm, tar and
# openssl. To move to another version: change VERSION, run, then update the
# version and integrity in README.md (assets.rs's tests check the version).
set -euo pipefail

VERSION=1.8.2

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

expected="$(npm view "mpegts.js@${VERSION}" dist.integrity)"
case "$expected" in
  sha512-*) ;;
  *) echo "refresh.sh: no sha512 integrity from the registry: '${expected}'" >&2; exit 1 ;;
esac

tarball="$(cd "$tmp" && npm pack --silent "mpegts.js@${VERSION}")"
actual="sha512-$(openssl dgst -sha512 -binary "$tmp/$tarball" | base64 -w0)"
if [ "$actual" != "$expected" ]; then
  echo "refresh.sh: integrity mismatch for ${tarball}" >&2
  echo "  registry: ${expected}" >&2
  echo "  tarball:  ${actual}" >&2
  exit 1
fi

tar -xzf "$tmp/$tarball" -C "$tmp" \
  package/package.json package/LICENSE \
  package/dist/mpegts.js package/dist/mpegts.js.LICENSE.txt
got="$(node -p 'require(process.argv[1]).version' "$tmp/package/package.json")"
if [ "$got" != "$VERSION" ]; then
  echo "refresh.sh: tarball says version ${got}, wanted ${VERSION}" >&2
  exit 1
fi

# dist/mpegts.js is the package's "main": the minified UMD build that
# defines window.mpegts when loaded with a <script> tag.
cp "$tmp/package/dist/mpegts.js" "$here/mpegts.js"
cp "$tmp/package/LICENSE" "$here/mpegts.LICENSE"
# The bundle's banner points at this file (the notices of the code bundled
# into it, es6-promise); served beside it so the pointer resolves.
cp "$tmp/package/dist/mpegts.js.LICENSE.txt" "$here/mpegts.js.LICENSE.txt"

echo "mpegts.js ${VERSION} (${expected}) copied to ${here}"
