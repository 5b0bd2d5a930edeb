#!/bin/bash
# marquee-entrypoint: the app image's entrypoint. Fills in what compose leaves to the node,
# then runs the command (by default `marquee serve`).
# - MYSQL_PASSWORD, CLUSTER_SECRET, ADMIN_PASSWORD: from the environment, else from the
#   secrets volume (written by marquee-secrets).
# - DATABASE_URL: if unset and MYSQL_HOST is set, built from MYSQL_HOST, MYSQL_PORT,
#   MYSQL_USER, MYSQL_PASSWORD and MARQUEE_DB_PREFIX as
#   mysql://USER:PASSWORD@HOST:PORT/<prefix>{node_id}: one schema per replica, which the node
#   creates on its first start.
#   The node replaces `{node_id}` with its id (NODE_ID, or under PEER_DISCOVERY the one it
#   derives from its IPv4 address: 3rd octet * 256 + 4th octet).
# - CATALOG_LOAD=seed (until the cluster takes the admin import): `marquee serve` is
#   preceded by `marquee import --from $DEMO_CATALOG_DIR` into this node's own database, on
#   the container's first start and only if no other replica is up (see below).
set -euo pipefail
. /usr/local/lib/marquee/lib.sh

for pair in MYSQL_PASSWORD:db_password CLUSTER_SECRET:cluster_secret ADMIN_PASSWORD:admin_password; do
    var=${pair%%:*} name=${pair#*:}
    if [ -z "${!var:-}" ] && [ -r "$MARQUEE_SECRETS_DIR/$name" ]; then
        export "$var=$(secret "$name")"
    fi
done

if [ -z "${DATABASE_URL:-}" ] && [ -n "${MYSQL_HOST:-}" ]; then
    user=$(urlencode "${MYSQL_USER:-marquee}")
    pass=$(urlencode "${MYSQL_PASSWORD:-}")
    export DATABASE_URL="mysql://$user${pass:+:$pass}@$MYSQL_HOST:${MYSQL_PORT:-3306}/${MARQUEE_DB_PREFIX:-marquee_node_}{node_id}"
fi

# The node's own IPv4 address: the one its host name has in /etc/hosts (Docker writes it).
own_ipv4() {
    local host
    host=$(cat /etc/hostname)
    awk -v h="$host" '$1 ~ /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/ && $1 !~ /^127\./ {
        for (i = 2; i <= NF; i++) if ($i == h) { print $1; exit } }' /etc/hosts
}

# Is another replica of the service up (its /healthz answers)?
other_replica_up() {
    local spec=${PEER_DISCOVERY#dns:} me ip
    [[ "${PEER_DISCOVERY:-}" == dns:* ]] || return 1
    me=${NODE_ADDRESS:-$(own_ipv4)}
    for ip in $(getent ahostsv4 "${spec%:*}" | awk '{print $1}' | sort -u); do
        [ "$ip" = "$me" ] && continue
        http GET "$ip" "${spec##*:}" /healthz 2>/dev/null && [ "$HTTP_STATUS" = 200 ] && return 0
    done
    return 1
}

# The seed is a write of this node's own, outside the master's log, so it is made only where
# it cannot disagree with the cluster: on the container's first start, and only when no
# other replica is up yet (replicas started together seed the same data on the same day;
# one that joins later gets the catalog from the master, like every other write).
seeded=/tmp/.marquee-seeded
if [ "${CATALOG_LOAD:-}" = seed ] && [ "${1:-}" = marquee ] && [ "${2:-serve}" = serve ] && [ ! -e "$seeded" ]; then
    if other_replica_up; then
        log "CATALOG_LOAD=seed: other replicas are up; this one gets the catalog from the master"
    else
        log "CATALOG_LOAD=seed: importing ${DEMO_CATALOG_DIR:?} into this node's database"
        marquee import --from "$DEMO_CATALOG_DIR"
    fi
    : >"$seeded"
fi

exec "$@"
