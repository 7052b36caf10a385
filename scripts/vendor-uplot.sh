#!/usr/bin/env bash
# Produce the web UI's vendored chart library from the npm registry:
#   scripts/vendor-uplot.sh [version]
# Downloads the pinned uPlot release with `npm pack`, checks the tarball against
# the registry's published integrity (sha512), and copies the minified IIFE
# build, its stylesheet and its licence into monitor/ui/static/vendor/.
# To update: change UPLOT_VERSION below (or pass a version), run this, look at
# the page (scripts/ui_screenshot.py) and run tests/e2e/test_ui_browser.py.
set -euo pipefail
UPLOT_VERSION="${1:-1.6.32}"
cd "$(dirname "$0")/.."
dest=monitor/ui/static/vendor
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tarball="$(cd "$work" && npm pack --silent "uplot@${UPLOT_VERSION}")"
expected="$(npm view "uplot@${UPLOT_VERSION}" dist.integrity)"
actual="sha512-$(openssl dgst -sha512 -binary "$work/$tarball" | base64 -w0)"
if [ "$expected" != "$actual" ]; then
  echo "integrity mismatch for uplot@${UPLOT_VERSION}: registry $expected, tarball $actual" >&2
  exit 1
fi
tar -xzf "$work/$tarball" -C "$work"
mkdir -p "$dest"
cp "$work/package/dist/uPlot.iife.min.js" "$dest/uPlot.iife.min.js"
cp "$work/package/dist/uPlot.min.css" "$dest/uPlot.min.css"
cp "$work/package/LICENSE" "$dest/uPlot.LICENSE"
echo "uplot@${UPLOT_VERSION} ${expected}" > "$dest/VERSION"
echo "vendored uplot@${UPLOT_VERSION} into $dest"
