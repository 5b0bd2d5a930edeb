#!/usr/bin/env bash
# Operations figures of issue 15, on a 3-node cluster on loopback:
#   1. log size per node (write_log rows and bytes, the whole schema) after a flash sale,
#      once per LOG_RETAIN_ENTRIES value (0: never compact; 100000: the default);
#   2. a newcomer's join: one follower stopped, its schema dropped and migrated empty, started
#      again; the time until its last LSN reaches the master's, its VmHWM, and its
#      "installed node X's snapshot" line if it installed one. With --join-load N, N clients
#      keep booking on the other two nodes all through the join (scripts/rebook.py: cancel a
#      booking, hold its seats again, confirm; three entries a round), so the newcomer has a
#      tail to follow after its snapshot; it has joined when it is within 100 entries of the
#      master's LSN of that moment;
#   3. `marquee backup` from the master and `marquee restore` into a fresh schema (new node id).
#
# The sale is flashsale's (--nodes 3 --keep-db): its load, audit and node start-up, not a copy
# of them. Two seats a booking, a hold and a confirm each an entry: --shows N of 25 x 40 seats
# sells 500 N bookings and writes about 1000 N entries (--shows 200: 100,000 bookings).
# flashsale stops its nodes when the sale is over; this script measures the kept schemas, then
# starts the same three node ids on them again (membership entries hold ids, PEERS the
# addresses) for the join and the backup. A benchmark: it prints figures, asserts nothing.
#
# usage: scripts/opsbench.sh [--shows N] [--retain 0,100000] [--clients N] [--join-load N] [--out DIR] [--keep-db]
#   BIN_DIR       where marquee and flashsale are (target/release)
#   MARQUEE_TEST_DATABASE_URL   the MariaDB server (mysql://root:marquee@127.0.0.1:3307)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=${BIN_DIR:-$root/target/release}
server=${MARQUEE_TEST_DATABASE_URL:-mysql://root:marquee@127.0.0.1:3307}
shows=200
retains=0,100000
clients=256
out=
keep_db=0
join_load=0
while [ $# -gt 0 ]; do
    case $1 in
        --shows) shows=$2; shift 2 ;;
        --retain) retains=$2; shift 2 ;;
        --clients) clients=$2; shift 2 ;;
        --join-load) join_load=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --keep-db) keep_db=1; shift ;;
        -h | --help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "opsbench: unknown option '$1'" >&2; exit 2 ;;
    esac
done
if [ ! -x "$bin_dir/marquee" ] || [ ! -x "$bin_dir/flashsale" ]; then
    echo "opsbench: no marquee and flashsale in $bin_dir (cargo build --release, or set BIN_DIR)" >&2
    exit 2
fi
[ -n "$out" ] || out=$(mktemp -d /tmp/opsbench.XXXXXX)
mkdir -p "$out"

# mysql://user:pass@host:port
if [[ $server =~ ^mysql://([^:@/]+)(:([^@/]*))?@([^:/]+)(:([0-9]+))?/?$ ]]; then
    db_user=${BASH_REMATCH[1]} db_pass=${BASH_REMATCH[3]} db_host=${BASH_REMATCH[4]} db_port=${BASH_REMATCH[6]:-3306}
else
    echo "opsbench: cannot read the server URL '$server'" >&2
    exit 2
fi
sql() { MYSQL_PWD=$db_pass mysql -h "$db_host" -P "$db_port" -u "$db_user" -N -B -e "$1"; }

pids=()     # nodes this script started
schemas=()  # schemas this script made or kept from flashsale
cleanup() {
    set +e
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    if [ "$keep_db" = 0 ]; then
        for s in "${schemas[@]}"; do sql "DROP DATABASE IF EXISTS \`$s\`"; done
    else
        echo "opsbench: kept the schemas ${schemas[*]}"
    fi
    rm -rf "$out"/backup-*
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# rows, LSN range, write_log's bytes in use (data_length + index_length, InnoDB statistics
# refreshed first) and its file (.ibd: a DELETE frees pages inside it, it does not shrink),
# and the same for the whole schema.
log_size() {
    local s=$1 tables
    tables=$(sql "SELECT GROUP_CONCAT(CONCAT('\`',table_name,'\`')) FROM information_schema.tables WHERE table_schema='$s'")
    sql "USE \`$s\`; ANALYZE TABLE $tables" >/dev/null
    sql "SELECT (SELECT COUNT(*) FROM \`$s\`.write_log), (SELECT COALESCE(MIN(lsn),0) FROM \`$s\`.write_log),
                (SELECT COALESCE(MAX(lsn),0) FROM \`$s\`.write_log),
                (SELECT data_length + index_length FROM information_schema.tables WHERE table_schema='$s' AND table_name='write_log'),
                (SELECT file_size FROM information_schema.innodb_sys_tablespaces WHERE name='$s/write_log'),
                (SELECT SUM(data_length + index_length) FROM information_schema.tables WHERE table_schema='$s'),
                (SELECT SUM(file_size) FROM information_schema.innodb_sys_tablespaces WHERE name LIKE '$s/%')" |
        while read -r rows first last wl wlf all allf; do
            printf '  %-28s write_log %7d rows (LSN %s..%s) %s, file %s; schema %s, files %s\n' \
                "$s" "$rows" "$first" "$last" "$(mib "$wl")" "$(mib "$wlf")" "$(mib "$all")" "$(mib "$allf")"
        done
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cluster_json() { curl -s --max-time 3 "http://127.0.0.1:$1/api/cluster" || true; }

# start_node ID SCHEMA LOGFILE: `marquee serve` as node ID of the cluster on ports[].
start_node() {
    local id=$1 schema=$2 log=$3 peers=() j
    for j in 1 2 3; do [ "$j" = "$id" ] || peers+=("$j@127.0.0.1:${ports[$j]}"); done
    NODE_ID=$id PEERS=$(IFS=,; echo "${peers[*]}") CLUSTER_SECRET=$secret \
        DATABASE_URL="$server/$schema" MARQUEE_BIND="127.0.0.1:${ports[$id]}" \
        LOG_RETAIN_ENTRIES=$retain RUST_LOG=warn,marquee::cluster=info,marquee::wal=info \
        MAX_HELD_SEATS=1000000 MAX_HOLDS_PER_MINUTE=1000000 HOLD_COOLOFF_SECONDS=0 LONELY_SEAT_RULE=off \
        MARQUEE_TEMPLATES="$root/templates" MARQUEE_ASSETS="$root/assets" \
        "$bin_dir/marquee" serve >>"$log" 2>&1 &
    node_pid[$id]=$!
    pids+=("$!")
}

stop_node() {
    local p=$1 q rest=()
    for q in "${pids[@]}"; do [ "$q" = "$p" ] || rest+=("$q"); done
    pids=("${rest[@]}")
    kill -TERM "$p" 2>/dev/null || return 0
    for _ in $(seq 150); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
}

# The master's id once one is writable and every node has its whole log (at most 120 s).
wait_master() {
    local v m
    for _ in $(seq 600); do
        v=$(cluster_json "${ports[1]}")
        m=$(jq -r '[.nodes[]? | select(.role=="master") | .id][0] // empty' <<<"$v" 2>/dev/null || true)
        if [ -n "$m" ] && jq -e '(.nodes | length) == 3 and all(.nodes[]; .reachable and .lag == 0)' <<<"$v" >/dev/null 2>&1 &&
            [ "$(cluster_json "${ports[$m]}" | jq -r .writable 2>/dev/null)" = true ]; then
            echo "$m"
            return 0
        fi
        sleep 0.2
    done
    return 1
}

echo "opsbench: $shows shows of 25 x 40 seats a sale ($((shows * 500)) bookings of two seats), LOG_RETAIN_ENTRIES $retains"
echo "opsbench: binaries $bin_dir, server $db_host:$db_port, output $out; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
IFS=, read -r -a retain_list <<<"$retains"
for retain in "${retain_list[@]}"; do
    echo
    echo "=== LOG_RETAIN_ENTRIES=$retain"
    sale_log=$out/sale-$retain.txt
    started=$(now)
    set +e
    LOG_RETAIN_ENTRIES=$retain "$bin_dir/flashsale" --nodes 3 --shows "$shows" --seconds 3600 --clients "$clients" \
        --keep-db --node-log warn,marquee::cluster=info >"$sale_log" 2>&1
    sale_rc=$?
    set -e
    base=$(sed -n 's/^schema \(marquee_flash_[a-z0-9]*\) seeded.*/\1/p' "$sale_log" | head -1)
    if [ -z "$base" ]; then
        echo "opsbench: flashsale made no schema (exit $sale_rc); see $sale_log" >&2
        tail -5 "$sale_log" >&2
        exit 1
    fi
    schemas+=("$base" "${base}_2" "${base}_3")
    echo "sale: $(secs "$started" "$(now)") s in all, flashsale exit $sale_rc (log $sale_log)"
    grep -E '^  (bookings confirmed|write-log transactions)|^target:|lost|double' "$sale_log" | sed 's/^/  /' || true
    compactions=$(grep -c 'compacted its log' "$sale_log" || true)
    echo "  compactions logged during the sale: $compactions"
    grep 'compacted its log' "$sale_log" | tail -3 | sed 's/^.*node /    node /' || true
    echo "log size per node after the sale (nodes stopped):"
    for s in "$base" "${base}_2" "${base}_3"; do log_size "$s"; done

    # The same three nodes again on their schemas.
    declare -A ports=() node_pid=()
    for i in 1 2 3; do ports[$i]=$(free_port); done
    secret=$(head -c 24 /dev/urandom | base64 | tr -dc A-Za-z0-9)
    schema_of=([1]="$base" [2]="${base}_2" [3]="${base}_3")
    for i in 1 2 3; do start_node "$i" "${schema_of[$i]}" "$out/node$i-$retain.log"; done
    master=$(wait_master) || { echo "opsbench: the cluster did not come back within 120 s" >&2; exit 1; }
    master_lsn=$(cluster_json "${ports[$master]}" | jq -r .last_lsn)
    echo "cluster up again: node $master is master at LSN $master_lsn"

    # A newcomer: a follower's schema emptied.
    newcomer=1
    [ "$newcomer" != "$master" ] || newcomer=2
    stop_node "${node_pid[$newcomer]}"
    s=${schema_of[$newcomer]}
    sql "DROP DATABASE \`$s\`; CREATE DATABASE \`$s\`"
    DATABASE_URL="$server/$s" "$bin_dir/marquee" migrate >/dev/null 2>&1
    join_log=$out/newcomer-$retain.log
    : >"$join_log"
    load_pid=
    stop_file=$out/stop-load
    rm -f "$stop_file"
    if [ "$join_load" -gt 0 ]; then
        urls=()
        for i in 1 2 3; do [ "$i" = "$newcomer" ] || urls+=(--url "http://127.0.0.1:${ports[$i]}"); done
        sql "SELECT code, email, show_id, seats FROM \`${schema_of[$master]}\`.bookings WHERE state='confirmed' LIMIT $((join_load * 50))" |
            python3 "$root/scripts/rebook.py" "${urls[@]}" --workers "$join_load" --seconds 1800 --stop "$stop_file" \
                >"$out/rebook-$retain.txt" 2>&1 &
        load_pid=$!
        sleep 3 # the load is under way before the newcomer starts
        echo "join under load: $join_load clients rebooking on the two other nodes (scripts/rebook.py)"
    fi
    started=$(now)
    start_node "$newcomer" "$s" "$join_log"
    pid=${node_pid[$newcomer]}
    joined=
    hwm=0
    for _ in $(seq 18000); do # 0.1 s each: at most 30 minutes
        kill -0 "$pid" 2>/dev/null || { echo "opsbench: the newcomer exited; see $join_log" >&2; exit 1; }
        h=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
        [ "${h:-0}" -gt "$hwm" ] && hwm=$h
        mine=$(cluster_json "${ports[$newcomer]}" | jq -r '.last_lsn // 0' 2>/dev/null || echo 0)
        if [ "$join_load" -gt 0 ]; then
            # The master's LSN now (a read that timed out keeps the last one).
            m=$(cluster_json "${ports[$master]}" | jq -r '.last_lsn // empty' 2>/dev/null || true)
            [[ $m =~ ^[0-9]+$ ]] && master_lsn=$m
        fi
        if [[ ${mine:-} =~ ^[0-9]+$ ]] && [ "$mine" -ge "$((master_lsn - (join_load > 0 ? 100 : 0)))" ]; then
            joined=$(now)
            break
        fi
        sleep 0.1
    done
    if [ -n "$load_pid" ]; then
        touch "$stop_file"
        wait "$load_pid" || true
        sed 's/^/  /' "$out/rebook-$retain.txt"
    fi
    [ -n "$joined" ] || { echo "opsbench: the newcomer did not catch up within 30 minutes" >&2; exit 1; }
    h=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
    [ "$h" -gt "$hwm" ] && hwm=$h
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
    echo "newcomer node $newcomer (empty schema) reached LSN $mine, the master's $master_lsn, in $(secs "$started" "$joined") s" \
        "after its start; VmHWM $(mib $((hwm * 1024))), VmRSS then $(mib $((rss * 1024)))"
    if grep -q "installed node" "$join_log"; then
        grep -o "node [0-9]*: installed node .*" "$join_log" | sed 's/^/  /'
    else
        echo "  no snapshot installed: it took the log from its start"
    fi
    echo "  its log: $(log_size "$s" | sed 's/^ *//')"

    # Backup from the master, restore into a fresh schema under a new node id.
    dir=$out/backup-$retain
    started=$(now)
    CLUSTER_SECRET=$secret NODE_ID=9 DATABASE_URL="$server/${schema_of[$master]}" MARQUEE_BIND=127.0.0.1:0 \
        RUST_LOG=warn "$bin_dir/marquee" backup --to "$dir" --node "127.0.0.1:${ports[$master]}" | sed 's/^/  /'
    took=$(secs "$started" "$(now)")
    echo "backup: $took s wall, $(mib "$(du -sb "$dir" | cut -f1)") on disk ($(find "$dir" -type f | wc -l) files)"
    r=${base}_r
    schemas+=("$r")
    sql "CREATE DATABASE \`$r\`"
    DATABASE_URL="$server/$r" "$bin_dir/marquee" migrate >/dev/null 2>&1
    started=$(now)
    NODE_ID=4 DATABASE_URL="$server/$r" RUST_LOG=warn "$bin_dir/marquee" restore --from "$dir" | sed 's/^/  /'
    took=$(secs "$started" "$(now)")
    echo "restore (migrated empty schema, NODE_ID 4): $took s wall"
    echo "  restored: $(log_size "$r" | sed 's/^ *//')"

    for i in 1 2 3; do stop_node "${node_pid[$i]}"; done
    rm -rf "$dir"
    if [ "$keep_db" = 0 ]; then
        for x in "$base" "${base}_2" "${base}_3" "$r"; do sql "DROP DATABASE IF EXISTS \`$x\`"; done
    fi
    unset ports node_pid
done
