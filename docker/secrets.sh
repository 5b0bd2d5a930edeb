#!/bin/bash
# marquee-secrets: the compose file's one-shot `secrets` service. Writes each secret the
# deployment needs into the `secrets` volume once: the value given in the environment (.env)
# if any, otherwise a random one. Nothing secret is kept in the repository, and a first
# `docker compose up` needs no configuration. Files that exist are left alone (the database
# was initialised with them); `docker compose down -v` starts afresh.
#   marquee-secrets            create what is missing
#   marquee-secrets show NAME  print one (e.g. admin_password)
set -euo pipefail
. /usr/local/lib/marquee/lib.sh
dir=$MARQUEE_SECRETS_DIR

if [ "${1:-}" = show ]; then
    exec cat "$dir/${2:?which secret: db_root_password, db_password, cluster_secret, admin_password}"
fi

random() { head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | cut -c1-32; }

mkdir -p "$dir"
chmod 0755 "$dir"
# name → the variable that may give it
for pair in db_root_password:MYSQL_ROOT_PASSWORD db_password:MYSQL_PASSWORD \
    cluster_secret:CLUSTER_SECRET admin_password:ADMIN_PASSWORD; do
    name=${pair%%:*} var=${pair#*:}
    if [ -s "$dir/$name" ]; then
        continue
    fi
    value=${!var:-} origin="from $var"
    [ -n "$value" ] || { value=$(random); origin=generated; }
    umask 0222
    printf '%s' "$value" >"$dir/$name.tmp"
    mv "$dir/$name.tmp" "$dir/$name"
    log "secret $name: $origin"
done
# Readable by the app (non-root) and MySQL's own user; the volume is mounted by this project's
# containers only.
chmod 0444 "$dir"/*
