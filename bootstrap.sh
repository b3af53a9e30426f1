#!/usr/bin/env bash
# Set up ispedge on a fresh Debian/Ubuntu machine, then run it.
#   sudo ./bootstrap.sh demo    install, then `ispedge demo` (portal on a printed URL)
#   sudo ./bootstrap.sh test    install everything the tests use, then scripts/run-tests
set -euo pipefail
cd "$(dirname "$0")"
MODE=${1:-demo}
shift || true

# Runtime needs: Python and its venv module. Tests also need the real peers.
APT_PACKAGES_RUNTIME="python3 python3-venv python3-dev gcc sqlite3 iproute2"
APT_PACKAGES_TEST="postgresql freeradius freeradius-utils freeradius-postgresql chromium iperf3 dnsutils dnsperf unbound dnsmasq-base poppler-utils fonts-noto-core fonts-dejavu-core systemd procps util-linux wrk"

case "$MODE" in
  demo) APT_PACKAGES="$APT_PACKAGES_RUNTIME" ;;
  test) APT_PACKAGES="$APT_PACKAGES_RUNTIME $APT_PACKAGES_TEST" ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac

missing=()
for pkg in $APT_PACKAGES; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts these services on install; the tests start their own copies.
for svc in freeradius unbound postgresql; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || true
done

# A pip.conf may name index locations that do not exist on this machine; pip then
# warns about each one on every run ("WARNING: Location 'file:///...' is ignored:
# it is neither a file nor a directory."). Drop exactly those lines; every other
# message and pip's exit status go through.
PIP_NOISE="^WARNING: Location 'file://[^']*' is ignored: it is neither a file nor a directory\.$"
pip_() {
  { .venv/bin/pip "$@" 2>&1 1>&3 3>&- | { grep -v -E "$PIP_NOISE" || true; } >&2; } 3>&1
}

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
pip_ install -q --upgrade pip >/dev/null
if [ "$MODE" = test ]; then
  pip_ install -q -e '.[test]'
else
  pip_ install -q -e .
fi

# axe-core for the accessibility tests (tests/support/axe.py looks in var/npm),
# from npm, into a gitignored directory: nothing vendored in the repository.
# npm comes with a Node.js from nodesource (whose nodejs package conflicts with
# Debian's npm package): install Debian's only when there is no npm at all.
if [ "$MODE" = test ] && ! command -v npm >/dev/null; then
  apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
if [ "$MODE" = test ] && [ ! -f var/npm/node_modules/axe-core/axe.min.js ]; then
  npm install --no-audit --no-fund --silent --prefix var/npm axe-core@4 >/dev/null
fi

case "$MODE" in
  demo) exec .venv/bin/ispedge demo "$@" ;;
  test) exec scripts/run-tests "$@" ;;
esac
