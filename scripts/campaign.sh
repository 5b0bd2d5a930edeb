#!/usr/bin/env bash
# The fault campaign (src/bin/campaign): real `marquee serve` processes on loopback, each
# with its own MariaDB server and Unix user, under faults, judged by the history checker.
# Installs what it needs from Debian's packages (MariaDB, iptables, libfaketime), builds the
# binaries and runs `campaign` with the arguments given, e.g.
#   scripts/campaign.sh --runs 3 --seconds 60 --faults kill,pause
#   scripts/campaign.sh --scenario scale-up-crash
# PROFILE=release builds optimized binaries (the default is the debug build the tests use).
# Must run as root: iptables rules, a user id per node, /etc/hosts lines (all removed after).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v mariadbd >/dev/null 2>&1 || need+=(mariadb-server mariadb-client)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1 ] || need+=(faketime)
dpkg -s libmariadb-dev-compat >/dev/null 2>&1 || need+=(libmariadb-dev-compat)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]} from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

profile=${PROFILE:-debug}
if [ "$profile" = release ]; then
  cargo build --release --locked --bin marquee --bin campaign
else
  cargo build --locked --bin marquee --bin campaign
fi
exec "${CARGO_TARGET_DIR:-target}/$profile/campaign" "$@"
