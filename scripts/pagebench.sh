#!/usr/bin/env bash
# Pages under a rush: one node on a scratch schema with the demo catalog, `wrk` on each
# page, a table of the figures. Cleans up after itself: the node it started (by pid), its
# log and its schema.
#
#   scripts/pagebench.sh                    # builds target/release/marquee, measures it
#   scripts/pagebench.sh OLD_BIN NEW_BIN    # measures each binary in turn (before/after)
#
# Each binary gets a node of its own on a fresh schema. MARQUEE_TEST_DATABASE_URL names the
# MariaDB/MySQL server (no database), default mysql://root:marquee@127.0.0.1:3307
# (scripts/mariadb.sh). PAGEBENCH_PORT (18480), PAGEBENCH_SECONDS (8),
# PAGEBENCH_CONNECTIONS (64) and PAGEBENCH_DATE (the catalog's day, default tomorrow in
# Los Angeles) change the run. Needs wrk, curl and the mysql client
# (Debian: apt-get install -y wrk curl mariadb-client).
set -euo pipefail
cd "$(dirname "$0")/.."

server=${MARQUEE_TEST_DATABASE_URL:-mysql://root:marquee@127.0.0.1:3307}
port=${PAGEBENCH_PORT:-18480}
seconds=${PAGEBENCH_SECONDS:-8}
connections=${PAGEBENCH_CONNECTIONS:-64}
# The demo catalog dated tomorrow in Los Angeles (FEED_TIMEZONE's default): at any hour every
# show is still to come, so the pages are the same size and the show page has its hold form.
date=${PAGEBENCH_DATE:-$(TZ=America/Los_Angeles date -d tomorrow +%F)}
base="http://127.0.0.1:$port"

for tool in wrk curl mysql; do
  command -v "$tool" >/dev/null || { echo "pagebench: needs $tool (apt-get install -y wrk curl mariadb-client)" >&2; exit 1; }
done

if [ $# -eq 0 ]; then
  cargo build --release --locked --bin marquee
  set -- target/release/marquee
fi

# mysql://user:password@host:port
creds=${server#mysql://}
userpass=${creds%@*}
hostport=${creds##*@}
hostport=${hostport%%/*}
db_user=${userpass%%:*}
db_password=${userpass#*:}
[ "$db_password" = "$userpass" ] && db_password=
db_host=${hostport%%:*}
db_port=${hostport##*:}
[ "$db_port" = "$hostport" ] && db_port=3306
sql() { MYSQL_PWD="$db_password" mysql -h "$db_host" -P "$db_port" -u "$db_user" -N -e "$1"; }

node_pid=
schema=
log=
cleanup() {
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
  fi
  node_pid=
  [ -z "$schema" ] || sql "DROP DATABASE IF EXISTS \`$schema\`" || true
  schema=
  [ -z "$log" ] || rm -f "$log"
  log=
}
trap cleanup EXIT

# The first number in the first match of a pattern.
first() { grep -o "$1" | sed -n '1s/[^0-9-]*\([0-9][0-9-]*\).*/\1/p'; }

bench() {
  local bin=$1
  schema="marquee_pagebench_$$_$RANDOM"
  log=$(mktemp)
  export DATABASE_URL="$server/$schema"
  "$bin" import --from data/flixster-la-2024-04 --date "$date" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  MARQUEE_BIND="127.0.0.1:$port" RUST_LOG=warn "$bin" serve >"$log" 2>&1 &
  node_pid=$!
  for _ in $(seq 1 100); do
    curl -fs "$base/healthz" >/dev/null 2>&1 && break
    kill -0 "$node_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
  done

  # Pages to measure, found the way a visitor finds them.
  local home movie theater show
  home=$(curl -fs "$base/")
  movie=$(first 'href="/movies/[0-9][0-9]*' <<<"$home")
  theater=$(first '<option value="[0-9][0-9]*">' <<<"$home")
  show=$(curl -fs "$base/movies/$movie" | first 'href="/shows/[0-9][0-9]*')
  [ -n "$movie" ] && [ -n "$theater" ] && [ -n "$show" ] || { echo "pagebench: no catalog on the home page" >&2; exit 1; }
  local pages=(
    "home|/"
    "home, a date|/?date=$date"
    "home, a theater|/?theater=$theater"
    "home, a search|/?q=the"
    "show page|/shows/$show"
    "movie page|/movies/$movie"
    "seat map JSON|/api/shows/$show/seats"
  )

  echo
  echo "$bin: wrk -t2 -c$connections -d${seconds}s --latency, one node, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  printf '| %-16s | %-26s | %10s | %9s | %9s | %7s |\n' page path "requests/s" "mean" "p99" "KB/page"
  printf '|%s|%s|%s|%s|%s|%s|\n' ------------------ ---------------------------- ------------ ----------- ----------- ---------
  local p name path size out rps mean p99 errors
  for p in "${pages[@]}"; do
    name=${p%%|*}
    path=${p#*|}
    size=$(curl -fs -o /dev/null -w '%{size_download}' "$base$path")
    out=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency "$base$path")
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    mean=$(awk '$1 == "Latency" {print $2; exit}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" || true)
    printf '| %-16s | %-26s | %10s | %9s | %9s | %7s |\n' "$name" "$path" "$rps" "$mean" "$p99" "$((size / 1024))"
    [ -z "$errors" ] || echo "    $errors"
  done
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); node RSS $(awk '/^VmRSS/ {printf "%.0f MiB", $2 / 1024}' "/proc/$node_pid/status")"
  cleanup
}

for bin in "$@"; do
  bench "$bin"
done
