#!/bin/bash
# marquee-load-catalog: the compose file's one-shot `catalog` service. Waits for the site
# behind nginx, makes sure the demo catalog gets loaded, and exits 0 once the site lists
# movies. How it is loaded is CATALOG_LOAD:
# - admin: through nginx, as the operator: log in at /admin/login with ADMIN_PASSWORD, POST
#   CATALOG_IMPORT_PATH (default /admin/api/imports), wait until the job is done. The node
#   that gets it hands the import to the master, whose importer (the real API client) reads
#   FLIXSTER_BASE_URL, the `catalog-api` service (`marquee fixture-api`) by default. The
#   write goes through the master's log like any other, so every replica gets it.
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
CATALOG_IMPORT_PATH=${CATALOG_IMPORT_PATH:-/admin/api/imports}

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
        # As the operator would, through nginx: log in (the double-submit CSRF token is ours
        # to choose), then start an import; the replica that gets it hands it to the master.
        [ -n "${ADMIN_PASSWORD:-}" ] || { log "no ADMIN_PASSWORD: the admin area is closed"; exit 1; }
        if [ -n "${CATALOG_API:-}" ]; then
            # Any answer will do (it wants the API key the importer sends).
            until http GET "${CATALOG_API%:*}" "${CATALOG_API##*:}" / 2>/dev/null; do
                [ $SECONDS -lt $deadline ] || { log "the catalog API at $CATALOG_API never answered"; exit 1; }
                sleep 1
            done
        fi
        csrf=$(head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | cut -c1-32)
        until HTTP_CONTENT_TYPE=application/x-www-form-urlencoded \
            http POST "$host" "$port" /admin/login "csrf_token=$csrf&password=$(urlencode "$ADMIN_PASSWORD")" \
            "Cookie: marquee_csrf=$csrf" 2>/dev/null && session=$(set_cookie marquee_admin) && [ -n "$session" ]; do
            log "admin login: ${HTTP_STATUS:-000}"
            [ $SECONDS -lt $deadline ] || exit 1
            sleep 3
        done
        cookies="Cookie: marquee_csrf=$csrf; marquee_admin=$session"
        until http POST "$host" "$port" "$CATALOG_IMPORT_PATH" '{}' "$cookies" "X-CSRF-Token: $csrf" 2>/dev/null \
            && [[ "$HTTP_STATUS" == 2* || "$HTTP_STATUS" == 409 ]]; do
            # 503 while the cluster has no master yet.
            log "POST $CATALOG_IMPORT_PATH: ${HTTP_STATUS:-000} ${HTTP_BODY:0:200}"
            [ $SECONDS -lt $deadline ] || exit 1
            sleep 3
        done
        if [ "$HTTP_STATUS" = 409 ]; then
            log "an import is already running: waiting for it"
        else
            log "import started: ${HTTP_BODY:0:300}"
        fi
        job_path=${CATALOG_IMPORT_PATH%/}/current
        while http GET "$host" "$port" "$job_path" "" "$cookies" 2>/dev/null \
            && [ "$HTTP_STATUS" = 200 ] && grep -q '"active":true' <<<"$HTTP_BODY"; do
            [ $SECONDS -lt $deadline ] || { log "the import did not finish in time"; exit 1; }
            sleep 2
        done
        if grep -q '"error":"' <<<"$HTTP_BODY"; then
            log "the import failed: ${HTTP_BODY:0:500}"
            exit 1
        fi
        ;;
    seed) log "CATALOG_LOAD=seed: the first replicas import the bundled catalog as they start" ;;
    *) log "unknown CATALOG_LOAD '$mode' (admin, seed or none)"; exit 2 ;;
esac

until n=$(listed); do
    [ $SECONDS -lt $deadline ] || { log "no movie is listed at $site"; exit 1; }
    sleep 2
done
log "catalog loaded: $n movies listed at $site"
