#!/bin/bash
# marquee-healthcheck [PORT [PATH]]: the image's HEALTHCHECK. Healthy when GET PATH (default
# /healthz) on this container answers 200. The port defaults to MARQUEE_BIND's.
. /usr/local/lib/marquee/lib.sh
bind=${MARQUEE_BIND:-0.0.0.0:8000}
port=${1:-${bind##*:}}
path=${2:-/healthz}
http GET 127.0.0.1 "$port" "$path" 2>/dev/null || exit 1
[ "$HTTP_STATUS" = 200 ] || { echo "GET $path: $HTTP_STATUS" >&2; exit 1; }
