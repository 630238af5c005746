#!/usr/bin/env bash
# Debian packages the test suite needs beyond npm: Chromium, which test/web.test.ts drives through
# playwright-core (that package downloads no browser), and redis-server, which test/queue.test.ts starts on a
# private port as the BullMQ queue. Idempotent: installs only what is missing, so a
# second run does nothing and needs no network.
set -euo pipefail

missing=()
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then missing+=(redis-server); fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "ci-deps: nothing to install"
  exit 0
fi

# Root in CI containers; sudo elsewhere.
SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
echo "ci-deps: installing ${missing[*]}"
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
