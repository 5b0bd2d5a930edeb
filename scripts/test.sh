#!/usr/bin/env bash
# The test command (README): sets up what the tests need on a fresh Debian machine, then
# checks formatting and lints and runs every test.
# - MariaDB: MARQUEE_TEST_DATABASE_URL if given, else a private server (scripts/mariadb.sh).
# - Browser tests: Chromium and chromedriver from Debian's packages; screenshots go to
#   target/screenshots/.
# - The fault campaign: scripts/campaign.sh (MariaDB servers of its own, iptables, faketime).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
dpkg -s libmariadb-dev-compat >/dev/null 2>&1 || need+=(libmariadb-dev-compat)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
# The browser tests (tests/browser.rs) drive headless Chromium through chromedriver.
{ [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } || need+=(chromium chromium-driver)
# The mail tests start a real SMTP server (tests/smtp/sink.py).
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || need+=(python3-aiosmtpd)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]} from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

echo "== MariaDB"
MARQUEE_TEST_DATABASE_URL=$(scripts/mariadb.sh)
export MARQUEE_TEST_DATABASE_URL

echo "== format and lints"
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi

# The fault campaign (README, "Faults survived"): real nodes, each with its own MariaDB,
# judged by the history checker; any finding fails the test. Two 60 s runs with the fault
# kinds mixed: every kind on 3 nodes (scale makes it DNS discovery), its nodes keeping 50
# log entries (--log-retain 50: they compact all the time, a follower is left behind the
# compaction point, nodes are killed half way through installing a snapshot; the run fails
# if no snapshot was installed), and every kind but scale on 5 nodes from a static list.
# CAMPAIGN_FAULTS=none runs the workload alone (and without --log-retain: with no fault
# nothing falls behind, so nothing would install and the run would fail).
# Needs root (iptables, a Unix user per node, /etc/hosts); without it the campaign is
# skipped, loudly.
echo "== fault campaign"
if [ "$(id -u)" = 0 ]; then
  scripts/campaign.sh clean --out target/campaign-ci >/dev/null
  retain=(--log-retain 50)
  [ "${CAMPAIGN_FAULTS:-all}" = none ] && retain=()
  scripts/campaign.sh --runs 1 --mix --faults "${CAMPAIGN_FAULTS:-all}" --nodes 3 --seconds 60 \
    ${retain[@]+"${retain[@]}"} --out target/campaign-ci
  scripts/campaign.sh --runs 1 --mix --faults "${CAMPAIGN_FAULTS:-kill,pause,partition,db-kill,db-stall,skew}" \
    --nodes 5 --discovery static --seconds 60 --seed 2 --out target/campaign-ci
else
  echo "skipped: the campaign needs root"
fi
