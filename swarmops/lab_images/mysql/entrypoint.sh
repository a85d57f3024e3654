#!/bin/bash
# The lab MySQL role: Debian's MariaDB behind the official mysql image's environment contract
# (docker-library/mysql 8.4 docker-entrypoint.sh), written anew:
#   MYSQL_ROOT_PASSWORD[_FILE]  root@localhost's password, required on a first start unless
#   MYSQL_ALLOW_EMPTY_PASSWORD  is set (root without a password: labs and tests only)
#   MYSQL_ROOT_HOST             root@<host> too, with the password (default '%'; localhost: none)
#   MYSQL_DATABASE              created on a first start
#   MYSQL_USER, MYSQL_PASSWORD[_FILE]  created on a first start, with every right on MYSQL_DATABASE
#   /docker-entrypoint-initdb.d/*.sh|*.sql  run on a first start, against the temporary server
# A first start initialises the data directory through a temporary server that listens on no TCP
# port, only on a socket, then runs the real server. A data directory that exists is never
# initialised again (so a first start killed half-way leaves one that needs recovering: see
# docs/operations.md). The *_FILE secrets are read here, as root, before the server runs as mysql;
# passwords travel to the server only through a pipe, never on a command line.
set -Eeuo pipefail

DATADIR=/var/lib/mysql
INIT_SOCKET=/run/mysqld/init.sock

log() { printf '%s [Entrypoint]: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$*"; }
die() {
  log "error: $*"
  exit 1
}

# file_env VAR: VAR from the file VAR_FILE names, when that is set (never both).
file_env() {
  local var=$1 file_var="${1}_FILE"
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    die "both $var and $file_var are set (but are exclusive)"
  fi
  if [ -n "${!file_var:-}" ]; then
    [ -r "${!file_var}" ] || die "$file_var: cannot read ${!file_var}"
    printf -v "$var" '%s' "$(<"${!file_var}")"
  fi
}

# sql_string VALUE: VALUE as a single-quoted SQL string literal.
sql_string() {
  local s=${1//\\/\\\\}
  s=${s//\'/\\\'}
  printf "'%s'" "$s"
}
# shellcheck disable=SC2016 # the backquotes are SQL's identifier quotes, not a command
sql_ident() { printf '`%s`' "${1//\`/\`\`}"; }

init_sql() {
  echo "SET @@SESSION.SQL_LOG_BIN=0;"
  # root@localhost with the password, and root@MYSQL_ROOT_HOST (default '%') unless that is localhost.
  echo "DELETE FROM mysql.global_priv WHERE User IN ('root', '') AND Host <> 'localhost';"
  echo "DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';"
  echo "FLUSH PRIVILEGES;"
  echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_string "$MYSQL_ROOT_PASSWORD");"
  local root_host=${MYSQL_ROOT_HOST:-%}
  if [ "$root_host" != localhost ]; then
    echo "CREATE USER 'root'@$(sql_string "$root_host") IDENTIFIED BY $(sql_string "$MYSQL_ROOT_PASSWORD");"
    echo "GRANT ALL ON *.* TO 'root'@$(sql_string "$root_host") WITH GRANT OPTION;"
  fi
  if [ -n "${MYSQL_DATABASE:-}" ]; then
    echo "CREATE DATABASE IF NOT EXISTS $(sql_ident "$MYSQL_DATABASE");"
  fi
  if [ -n "${MYSQL_USER:-}" ] && [ -n "${MYSQL_PASSWORD:-}" ]; then
    echo "CREATE USER $(sql_string "$MYSQL_USER")@'%' IDENTIFIED BY $(sql_string "$MYSQL_PASSWORD");"
    if [ -n "${MYSQL_DATABASE:-}" ]; then
      echo "GRANT ALL ON $(sql_ident "$MYSQL_DATABASE").* TO $(sql_string "$MYSQL_USER")@'%';"
    fi
  fi
}

# option_value VALUE: VALUE quoted for an option file ('#' would start a comment unquoted).
option_value() {
  local s=${1//\\/\\\\}
  printf '"%s"' "${s//\"/\\\"}"
}

# The temporary server's client: root over the init socket, the password through a pipe.
temp_client() {
  mariadb --defaults-extra-file=<(printf '[client]\npassword=%s\n' "$(option_value "$MYSQL_ROOT_PASSWORD")") \
    --protocol=socket --socket="$INIT_SOCKET" -uroot "$@"
}

run_init_files() {
  local file
  shopt -s nullglob
  for file in /docker-entrypoint-initdb.d/*; do
    case "$file" in
      *.sh)
        log "running $file"
        # shellcheck disable=SC1090 # an operator's init script, sourced as the official image does
        . "$file"
        ;;
      *.sql)
        log "running $file"
        temp_client ${MYSQL_DATABASE:+--database="$MYSQL_DATABASE"} <"$file"
        ;;
      *) log "ignoring $file" ;;
    esac
  done
}

initialise() {
  file_env MYSQL_ROOT_PASSWORD
  file_env MYSQL_PASSWORD
  if [ -z "${MYSQL_ROOT_PASSWORD:-}" ] && [ -z "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" ]; then
    die "the data directory is empty and neither MYSQL_ROOT_PASSWORD(_FILE) nor MYSQL_ALLOW_EMPTY_PASSWORD is set"
  fi
  MYSQL_ROOT_PASSWORD=${MYSQL_ROOT_PASSWORD:-}
  log "initialising the data directory"
  mariadb-install-db --user=mysql --datadir="$DATADIR" --skip-test-db --auth-root-authentication-method=normal >/dev/null
  setpriv --reuid=mysql --regid=mysql --init-groups -- "$@" --skip-networking --socket="$INIT_SOCKET" &
  local pid=$!
  for _ in $(seq 600); do
    if mariadb --protocol=socket --socket="$INIT_SOCKET" -uroot -e 'SELECT 1' >/dev/null 2>&1; then break; fi
    kill -0 "$pid" 2>/dev/null || die "the temporary server exited"
    sleep 0.1
  done
  log "temporary server ready (no networking, socket $INIT_SOCKET)"
  init_sql | mariadb --protocol=socket --socket="$INIT_SOCKET" -uroot >/dev/null || die "the init SQL failed"
  run_init_files
  temp_client -e 'SHUTDOWN' >/dev/null || die "the temporary server did not take the shutdown"
  wait "$pid" || die "the temporary server did not stop cleanly"
  unset MYSQL_ROOT_PASSWORD MYSQL_PASSWORD
  log "init process done; starting the server"
}

if [ "${1:0:1}" = '-' ]; then set -- mariadbd "$@"; fi
case "$1" in
  mariadbd | mysqld | /usr/sbin/mariadbd | /usr/sbin/mysqld) ;;
  *) exec "$@" ;;
esac

mkdir -p /run/mysqld "$DATADIR"
chown mysql:mysql /run/mysqld "$DATADIR"
if [ ! -d "$DATADIR/mysql" ]; then
  initialise "$@"
fi
exec setpriv --reuid=mysql --regid=mysql --init-groups -- "$@"
