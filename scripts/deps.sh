#!/usr/bin/env bash
# Installs what Regent needs beyond Go itself, on Debian/Ubuntu:
#   softhsm2   - PKCS#11 HSM used by tests and the demo (one token per region)
#   gcc        - cgo, for blst (BLS12-381) and PKCS#11
# Idempotent: installs only what is missing. Run as root or with sudo.
set -euo pipefail
need=()
[ -e /usr/lib/softhsm/libsofthsm2.so ] || need+=(softhsm2)
command -v softhsm2-util >/dev/null || need+=(softhsm2)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
echo "installing: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${need[@]}"
