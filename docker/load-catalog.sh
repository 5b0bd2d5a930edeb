#!/bin/bash
# marquee-load-catalog: the compose file's one-shot `catalog` service. Waits for the site
# behind nginx, makes sure the demo catalog gets loaded, and exits 0 once the site lists
# movies. How it is loaded is CATALOG_LOAD:
# - admin: POST CATALOG_IMPORT_PATH (default /admin/import) through nginx, as the admin: the
#   node that gets it hands the import to the master, whose importer (the real API client)
#   reads FLIXSTER_BASE_URL, the `catalog-api` service (`marquee fixture-api`) by default.
#   The write goes through the master's log like any other, so every replica gets it.
# - seed: each replica imported the bundled directory into its own database before serving
#   (marquee-entrypoint); here we only wait for it. For a build without the cluster.
# - none: do nothing.
set -euo pipefail
. /usr/local/lib/marquee/lib.sh
mode=${CATALOG_LOAD:-admin}
ADMIN_PASSWORD=${ADMIN_PASSWORD:-$(secret admin_password || true)}
site=${MARQUEE_SITE:-nginx:80}
host=${site%:*} port=${site##*:}
deadline=$((SECONDS + ${CATALOG_WAIT_SECONDS:-600}))

[ "$mode" = none ] && { log "CATALOG_LOAD=none: nothing to load"; exit 0; }

until http GET "$host" "$port" /healthz 2>/dev/null && [ "$HTTP_STATUS" = 200 ]; do
    [ $SECONDS -lt $deadline ] || { log "the site at $site never became healthy"; exit 1; }
    sleep 2
done

listed() { http GET "$host" "$port" / 2>/dev/null && [ "$HTTP_STATUS" = 200 ] && grep -c 'href="/movies/[0-9]' <<<"$HTTP_BODY"; }

if n=$(listed); then
    log "the catalog is already loaded ($n movies listed)"
    exit 0
fi

case "$mode" in
    admin)
        path=${CATALOG_IMPORT_PATH:-/admin/import}
        auth=$(printf '%s:%s' "${ADMIN_USER:-admin}" "${ADMIN_PASSWORD:-}" | base64 -w0)
        until http POST "$host" "$port" "$path" '{}' "Authorization: Basic $auth" \
            "Idempotency-Key: demo-catalog-$(date -u +%Y%m%d)" 2>/dev/null && [[ "$HTTP_STATUS" == 2* ]]; do
            log "POST $path: ${HTTP_STATUS:-000} ${HTTP_BODY:0:200}"
            [ $SECONDS -lt $deadline ] || exit 1
            sleep 3
        done
        log "import requested: $HTTP_STATUS ${HTTP_BODY:0:200}"
        ;;
    seed) log "CATALOG_LOAD=seed: the replicas import the bundled catalog as they start" ;;
    *) log "unknown CATALOG_LOAD '$mode' (admin, seed or none)"; exit 2 ;;
esac

until n=$(listed); do
    [ $SECONDS -lt $deadline ] || { log "no movie is listed at $site"; exit 1; }
    sleep 2
done
log "catalog loaded: $n movies listed at $site"
