# Run once by the MySQL image's entrypoint when it initialises an empty data directory
# (sourced from /docker-entrypoint-initdb.d, as the official mysql and mariadb images do).
# Lets the app user create and own one schema per replica: `<prefix>%`, e.g. marquee_node_5.
# shellcheck shell=bash
marquee_prefix=${MARQUEE_DB_PREFIX:-marquee_node_}
marquee_user=${MYSQL_USER:-marquee}
# In a GRANT's database name, _ and % are wildcards: escape the prefix's underscores.
marquee_pattern="${marquee_prefix//_/\\_}%"
echo "marquee: granting $marquee_user all rights on databases named ${marquee_prefix}*"
# The images' entrypoints source this file with docker_process_sql defined; if it was run as
# a program instead (executable bit), talk to the init server's socket directly.
if ! declare -F docker_process_sql >/dev/null; then
    docker_process_sql() {
        mysql --protocol=socket -uroot ${MYSQL_ROOT_PASSWORD:+-p"$MYSQL_ROOT_PASSWORD"} "$@"
    }
fi
docker_process_sql --database=mysql <<SQL
GRANT ALL PRIVILEGES ON \`${marquee_pattern}\`.* TO '${marquee_user}'@'%';
FLUSH PRIVILEGES;
SQL
