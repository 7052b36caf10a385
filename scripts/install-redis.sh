#!/usr/bin/env bash
# Install redis-server from the distribution's packages when it is missing.
set -euo pipefail
command -v redis-server >/dev/null && exit 0
if ! command -v apt-get >/dev/null; then
  echo "redis-server is missing and apt-get is not available: install Redis 7 yourself" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq redis-server >/dev/null
# The package may start a system service on 6379; the project never relies on it.
command -v redis-server
