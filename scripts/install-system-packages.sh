#!/usr/bin/env bash
# Install the Debian packages the tests and the local stack run for real, when
# they are missing: redis-server (streams and state; also runs a local Redis
# Cluster), prometheus and promtool, prometheus-alertmanager, chromium and
# chromium-driver (browser tests of the monitor's web UI), lua-check (the
# Lua scripts' lint) and kubectl (renders the Kubernetes manifests). A
# machine that has them all installs nothing.
set -euo pipefail
# command -> Debian package that provides it
declare -A PACKAGES=(
  [redis-server]=redis-server
  [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [chromium]=chromium
  [chromedriver]=chromium-driver
  [luacheck]=lua-check
  # kubectl renders the Kubernetes manifests (kustomize built in); on this
  # machine image it comes with the Google Cloud CLI packages.
  [kubectl]=kubectl
)
missing=()
for command in "${!PACKAGES[@]}"; do
  command -v "$command" >/dev/null || missing+=("${PACKAGES[$command]}")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "missing ${missing[*]} and apt-get is not available: install them yourself" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# redis-server and prometheus may start system services on their standard
# ports; the project never relies on them (tests pick free ports).
for command in "${!PACKAGES[@]}"; do command -v "$command" >/dev/null; done
