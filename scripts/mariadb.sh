#!/usr/bin/env bash
# Makes sure a MariaDB server is reachable for the tests and prints its URL (without a database).
# - With MARQUEE_TEST_DATABASE_URL set, that server is used as it is.
# - Otherwise a private server is started (installed from Debian's packages if missing) with its
#   data directory under target/, listening on 127.0.0.1:${MARQUEE_TEST_DB_PORT:-3307}.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${MARQUEE_TEST_DATABASE_URL:-}" ]; then
  echo "$MARQUEE_TEST_DATABASE_URL"
  exit 0
fi
port=${MARQUEE_TEST_DB_PORT:-3307}
datadir="$root/target/mariadb/data"
sock="$root/target/mariadb/mysqld.sock"
log="$root/target/mariadb/mysqld.log"
url="mysql://root:marquee@127.0.0.1:$port"

need_pkgs=()
command -v mariadbd >/dev/null 2>&1 || need_pkgs+=(mariadb-server mariadb-client)
dpkg -s libmariadb-dev-compat >/dev/null 2>&1 || need_pkgs+=(libmariadb-dev-compat)
command -v pkg-config >/dev/null 2>&1 || need_pkgs+=(pkg-config)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "installing ${need_pkgs[*]} from Debian's packages" >&2
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2
fi

alive() { mariadb-admin --protocol=tcp -h127.0.0.1 -P"$port" -uroot -pmarquee ping >/dev/null 2>&1; }
if alive; then echo "$url"; exit 0; fi

mkdir -p "$(dirname "$datadir")"
if [ ! -d "$datadir/mysql" ]; then
  mariadb-install-db --no-defaults --user=root --datadir="$datadir" --auth-root-authentication-method=normal >&2
  fresh=1
fi
nohup mariadbd --no-defaults --user=root --datadir="$datadir" --socket="$sock" \
  --bind-address=127.0.0.1 --port="$port" --skip-name-resolve \
  --max-connections=1000 --innodb-buffer-pool-size=512M --innodb-log-file-size=1G \
  --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
  --log-error="$log" >/dev/null 2>&1 &
for _ in $(seq 1 60); do
  if mariadb-admin --socket="$sock" -uroot ping >/dev/null 2>&1 || alive; then break; fi
  sleep 0.5
done
if [ "${fresh:-0}" = 1 ] || ! alive; then
  mariadb --socket="$sock" -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED BY 'marquee'; CREATE OR REPLACE USER 'root'@'127.0.0.1' IDENTIFIED BY 'marquee'; DROP USER IF EXISTS ''@'localhost'; DROP USER IF EXISTS ''@'$(hostname)'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;" >&2 || true
fi
alive || { echo "MariaDB did not come up; see $log" >&2; exit 1; }
echo "$url"
