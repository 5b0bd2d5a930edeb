#!/bin/bash
# marquee-nginx: the nginx container's entrypoint. Keeps the `marquee` upstream block equal to
# the healthy replicas of the app service, then runs nginx in the foreground.
#
# Open-source nginx resolves the names in an upstream block once, at start (re-resolution,
# `server NAME resolve`, came to open source in 1.27.3; Debian bookworm has 1.22). A variable
# in proxy_pass with `resolver 127.0.0.11` would re-resolve, but gives up the upstream block:
# no balancing across all addresses, no passive health, no retry on the next server. So this
# loop asks Docker's DNS for every address of the service every UPSTREAM_REFRESH_SECONDS,
# keeps those whose /healthz answers (an active health check), rewrites the block and reloads
# nginx when it changed. A reload starts new workers on the new list; nothing is dropped.
set -uo pipefail
service=${UPSTREAM_SERVICE:-app}
port=${UPSTREAM_PORT:-8000}
# The replicas' live seat-map listener (their LIVE_BIND); the site's port when they have none.
live_port=${UPSTREAM_LIVE_PORT:-$port}
every=${UPSTREAM_REFRESH_SECONDS:-5}
conf=/etc/nginx/marquee/upstream.conf

log() { printf '%s marquee-nginx: %s\n' "$(date -u +%Y/%m/%d\ %H:%M:%S)" "$*" >&2; }

# The service's IPv4 addresses, sorted.
addresses() {
    getent ahostsv4 "$service" 2>/dev/null | awk '{print $1}' | sort -u -t. -k1,1n -k2,2n -k3,3n -k4,4n
}

# Prints the upstream block for the replicas now: the healthy ones, or every resolved one
# when none is (nginx's own failure accounting then decides), or a placeholder when the
# service has no address yet (nginx answers 502 until a replica appears).
render() {
    local all healthy ip dir
    all=$(addresses)
    dir=$(mktemp -d)
    for ip in $all; do
        (curl -fsS -o /dev/null --connect-timeout 1 -m 2 "http://$ip:$port/healthz" 2>/dev/null && : >"$dir/$ip") &
    done
    wait
    healthy=$(for ip in $all; do [ -e "$dir/$ip" ] && echo "$ip"; done)
    rm -rf "$dir"
    [ -n "$healthy" ] || healthy=$all
    echo "# Written by marquee-nginx from the DNS name '$service' (port $port)."
    echo "upstream marquee {"
    echo "    least_conn;"
    if [ -z "$healthy" ]; then
        echo "    server 127.0.0.1:$port down;"
    fi
    for ip in $healthy; do
        echo "    server $ip:$port max_fails=2 fail_timeout=5s;"
    done
    echo "    keepalive 32;"
    echo "}"
    # The same replicas' live listeners (websockets are long-lived: no keepalive pool).
    echo "upstream marquee_live {"
    echo "    least_conn;"
    if [ -z "$healthy" ]; then
        echo "    server 127.0.0.1:$live_port down;"
    fi
    for ip in $healthy; do
        echo "    server $ip:$live_port max_fails=2 fail_timeout=5s;"
    done
    echo "}"
}

servers() { grep -o "server [0-9.]*:$port max" "$1" 2>/dev/null | awk '{print $2}' | tr '\n' ' '; }

mkdir -p "$(dirname "$conf")"
render >"$conf"
log "upstream: $(servers "$conf")"
nginx -t -q || exit 1

(
    while sleep "$every"; do
        render >"$conf.next"
        if ! cmp -s "$conf.next" "$conf"; then
            cp "$conf" "$conf.last"
            mv "$conf.next" "$conf"
            if nginx -t -q 2>/dev/null; then
                nginx -s reload && log "upstream: $(servers "$conf")"
            else
                log "the new upstream block is invalid; keeping the last one"
                mv "$conf.last" "$conf"
            fi
        fi
    done
) &

exec nginx -g 'daemon off;'
