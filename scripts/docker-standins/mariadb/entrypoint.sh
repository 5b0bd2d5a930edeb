#!/bin/bash
# TEST STAND-IN for the official mysql image's entrypoint, with the part of its interface the
# compose file uses: MYSQL_ROOT_PASSWORD, MYSQL_USER, MYSQL_PASSWORD, MYSQL_DATABASE (each
# also as *_FILE), /var/lib/mysql, and /docker-entrypoint-initdb.d (*.sql run, *.sh sourced
# with docker_process_sql defined) on the first start.
set -eo pipefail
sock=/run/mysqld/mysqld.sock

file_env() {
    local var=$1 file="${1}_FILE" val=""
    if [ -n "${!var:-}" ] && [ -n "${!file:-}" ]; then
        echo "both $var and $file are set" >&2
        exit 1
    fi
    if [ -n "${!var:-}" ]; then val=${!var}; elif [ -n "${!file:-}" ]; then val=$(<"${!file}"); fi
    export "$var=$val"
    unset "$file"
}

sql_string() { local s=${1//\\/\\\\}; printf "'%s'" "${s//\'/\\\'}"; }

docker_process_sql() {
    mariadb --protocol=socket --socket="$sock" -uroot ${MYSQL_ROOT_PASSWORD:+-p"$MYSQL_ROOT_PASSWORD"} "$@"
}

if [ "${1:0:1}" = - ]; then set -- mysqld "$@"; fi
if [ "$1" != mysqld ] && [ "$1" != mariadbd ]; then exec "$@"; fi
shift

for v in MYSQL_ROOT_PASSWORD MYSQL_USER MYSQL_PASSWORD MYSQL_DATABASE; do file_env "$v"; done
server=(mariadbd --user=mysql --datadir=/var/lib/mysql --socket="$sock" --skip-name-resolve
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci --max-connections=1000)
mkdir -p /run/mysqld
chown mysql:mysql /run/mysqld /var/lib/mysql

if [ ! -d /var/lib/mysql/mysql ]; then
    if [ -z "$MYSQL_ROOT_PASSWORD" ]; then
        echo "database is uninitialized and MYSQL_ROOT_PASSWORD is not set" >&2
        exit 1
    fi
    echo "initializing the database"
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql --auth-root-authentication-method=normal \
        --skip-test-db >/dev/null
    "${server[@]}" --skip-networking &
    pid=$!
    for _ in $(seq 1 120); do
        mariadb-admin --socket="$sock" -uroot ping --silent 2>/dev/null && break
        sleep 0.5
    done
    pw=$(sql_string "$MYSQL_ROOT_PASSWORD")
    {
        echo "DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host NOT IN ('localhost')); FLUSH PRIVILEGES;"
        echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $pw;"
        echo "CREATE USER 'root'@'%' IDENTIFIED BY $pw; GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
        if [ -n "$MYSQL_DATABASE" ]; then echo "CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;"; fi
        if [ -n "$MYSQL_USER" ] && [ -n "$MYSQL_PASSWORD" ]; then
            echo "CREATE USER '$MYSQL_USER'@'%' IDENTIFIED BY $(sql_string "$MYSQL_PASSWORD");"
            if [ -n "$MYSQL_DATABASE" ]; then echo "GRANT ALL ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_USER'@'%';"; fi
        fi
        echo "FLUSH PRIVILEGES;"
    } | mariadb --protocol=socket --socket="$sock" -uroot
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh) if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
            *.sql) docker_process_sql <"$f" ;;
            *) ;;
        esac
    done
    kill "$pid"
    wait "$pid" || true
    echo "database initialized"
fi

exec "${server[@]}" --bind-address=0.0.0.0 --port=3306 "$@"
