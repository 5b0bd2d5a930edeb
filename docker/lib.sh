# Shared by the scripts of the app image (sourced, not run): a tiny HTTP client on bash's
# /dev/tcp, so the runtime image needs no curl; the secrets; URL encoding.
# shellcheck shell=bash

MARQUEE_SECRETS_DIR=${MARQUEE_SECRETS_DIR:-/run/marquee-secrets}

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# http METHOD HOST PORT PATH [BODY [HEADER...]]: one HTTP/1.0 request. Sets HTTP_STATUS (000
# when nothing answered), HTTP_HEADERS and HTTP_BODY. A body is sent as HTTP_CONTENT_TYPE
# (default application/json). Returns 0 when an answer came, whatever its status.
http() {
    local method=$1 host=$2 port=$3 path=$4 body=${5:-} headers="" h line
    shift 4
    [ $# -gt 0 ] && shift
    for h in "$@"; do headers+="$h"$'\r\n'; done
    HTTP_STATUS=000
    HTTP_HEADERS=""
    HTTP_BODY=""
    exec 3<>"/dev/tcp/$host/$port" || return 1
    printf '%s %s HTTP/1.0\r\nHost: %s\r\nAccept: */*\r\n%s' "$method" "$path" "$host" "$headers" >&3
    if [ -n "$body" ] || [ "$method" = POST ]; then
        printf 'Content-Type: %s\r\nContent-Length: %d\r\n' "${HTTP_CONTENT_TYPE:-application/json}" "${#body}" >&3
    fi
    printf '\r\n%s' "$body" >&3
    IFS= read -r -t 10 line <&3 || { exec 3<&-; return 1; }
    HTTP_STATUS=$(printf '%s' "$line" | cut -d' ' -f2)
    while IFS= read -r -t 10 line <&3; do
        line=${line%$'\r'}
        [ -z "$line" ] && break
        HTTP_HEADERS+="$line"$'\n'
    done
    HTTP_BODY=$(timeout 30 cat <&3 || true)
    exec 3<&-
    return 0
}

# set_cookie NAME: the value the last answer set for cookie NAME, or nothing.
set_cookie() {
    printf '%s' "$HTTP_HEADERS" | sed -n "s/^[Ss]et-[Cc]ookie: *$1=\([^;]*\).*/\1/p" | tail -1
}

# secret NAME: the content of a generated secret (see marquee-secrets), or nothing.
secret() {
    local f="$MARQUEE_SECRETS_DIR/$1"
    [ -r "$f" ] && cat "$f"
}

# urlencode TEXT: percent-encodes everything but unreserved characters (RFC 3986).
urlencode() {
    local LC_ALL=C s=$1 out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case "$c" in
            [a-zA-Z0-9.~_-]) out+=$c ;;
            *) out+=$(printf '%%%02X' "'$c") ;;
        esac
    done
    printf '%s' "$out"
}
