#!/bin/bash
# The stack's backup jobs (components/backups.py), one script for both parts of a backup, each run
# in the image that has its tools:
#   database  in the MySQL image: mysqldump with an InnoDB consistent snapshot (routines, triggers
#             and events included), gzip, sha256sum
#   content   in the WordPress image: tar and gzip of wp-content (mounted read-only), sha256sum
# and these modes (the last four run as one-shot tasks by `python -m swarmops.backups`):
#   schedule  every 30 s: stamp the current interval (UTC-aligned); take this part if it has none
#   once      take this part now, under $BACKUP_STAMP (an on-demand backup)
#   list      print each backup with the manifests it has
#   pause, resume  stop and restart the schedulers' backups (the file /backups/.paused)
#   restore   put backup $BACKUP_STAMP's part back: load the dump into the live database, or
#             replace wp-content (mounted writable for it) with the archive
#   rehearse  check backup $BACKUP_STAMP's part without touching anything live: load the dump into
#             a scratch server inside this task and count what WordPress needs, or read the archive
# A backup is /backups/<stamp>/ holding database.sql.gz, wp-content.tar.gz and, written last and
# atomically, each part's manifest (database.json, wp-content.json: time, size, checksum, image).
# A backup is complete when both manifests are there. The database job keeps the newest
# $BACKUP_KEEP complete backups and removes older ones. While /backups/.paused exists (an
# operator's `python -m swarmops.backups pause`) the schedulers take none. The password is read from its secret file
# into the client's option file through a pipe: on no command line, in no environment, in no log.
set -Eeuo pipefail

part=${1:?usage: backup.sh database|content schedule|once}
mode=${2:?usage: backup.sh database|content schedule|once}
backups=/backups
interval=$((BACKUP_INTERVAL_MINUTES * 60))
heartbeat=/tmp/backup-heartbeat
stopping=false

log() { printf '%s backup %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$part" "$*"; }

case "$part" in
  database) artifact=database.sql.gz manifest=database.json image=$MYSQL_IMAGE ;;
  content) artifact=wp-content.tar.gz manifest=wp-content.json image=$WORDPRESS_IMAGE ;;
  *)
    log "unknown part $part"
    exit 2
    ;;
esac

# The interval this moment falls in, as a directory name: both jobs pick the same one.
current_stamp() {
  date -u -d "@$(($(date +%s) / interval * interval))" +%Y%m%dT%H%M%SZ
}

client_options() {
  printf '[client]\nuser=%s\npassword="%s"\nhost=%s\nport=%s\n' \
    "$DB_USER" "$(cat "$DB_PASSWORD_FILE")" "$DB_HOST" "$DB_PORT"
}

dump_database() {
  mysqldump --defaults-extra-file=<(client_options) --single-transaction --quick --routines --triggers \
    --events --no-tablespaces --add-drop-database --databases "$DB_NAME" | gzip -c
}

archive_content() {
  tar -C /wp-content -czf - .
}

take() {
  local stamp=$1 dir="$backups/$1" started seconds bytes sum
  if [ -f "$dir/$manifest" ]; then
    log "$stamp already has its $part"
    return 0
  fi
  mkdir -p "$dir"
  started=$(date +%s)
  log "taking $stamp"
  # Checked here, not by `set -e`: it doesn't apply inside a function called from `||`.
  if ! { if [ "$part" = database ]; then dump_database; else archive_content; fi; } >"$dir/$artifact.partial"; then
    rm -f "$dir/$artifact.partial"
    log "$stamp: the $part failed"
    return 1
  fi
  mv "$dir/$artifact.partial" "$dir/$artifact"
  seconds=$(($(date +%s) - started))
  bytes=$(stat -c %s "$dir/$artifact")
  sum=$(sha256sum "$dir/$artifact" | cut -d' ' -f1)
  printf '{"part": "%s", "stamp": "%s", "finished": "%s", "seconds": %d, "file": "%s", "bytes": %d, "sha256": "%s", "image": "%s", "database": "%s"}\n' \
    "$part" "$stamp" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$seconds" "$artifact" "$bytes" "$sum" "$image" "$DB_NAME" \
    >"$dir/$manifest.partial"
  mv "$dir/$manifest.partial" "$dir/$manifest"
  log "took $stamp: $artifact, $bytes bytes in $seconds s"
}

complete() { [ -f "$1/database.json" ] && [ -f "$1/wp-content.json" ]; }

# Keeps the newest $BACKUP_KEEP complete backups; an incomplete one older than the newest complete
# one will never be completed (its interval is over) and goes too.
prune() {
  local dir kept=0 newest_complete=""
  find "$backups" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*Z' | sort -r | while read -r dir; do
    if complete "$dir"; then
      kept=$((kept + 1))
      [ -n "$newest_complete" ] || newest_complete=$dir
      if [ "$kept" -gt "$BACKUP_KEEP" ]; then
        log "removing $(basename "$dir") (keeping $BACKUP_KEEP)"
        rm -rf "$dir"
      fi
    elif [ -n "$newest_complete" ]; then
      log "removing $(basename "$dir") (incomplete)"
      rm -rf "$dir"
    fi
  done
}

# Both parts prune: whichever finishes a backup last counts it complete.
run_once() {
  take "$1"
  prune
}

# The part's file of backup $1, checked against the checksum its manifest recorded.
checked_artifact() {
  local dir="$backups/$1" expected
  [ -f "$dir/$manifest" ] || {
    echo "FAIL: backup $1 has no $manifest (an incomplete backup)"
    return 1
  }
  expected=$(sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p' "$dir/$manifest")
  if ! echo "$expected  $dir/$artifact" | sha256sum --check --status; then
    echo "FAIL: $artifact of backup $1 doesn't match its checksum (damaged or truncated)"
    return 1
  fi
  echo "$dir/$artifact"
}

restore() {
  local file
  file=$(checked_artifact "$1") || {
    echo "$file"
    return 1
  }
  if [ "$part" = database ]; then
    gunzip -c "$file" | mysql --defaults-extra-file=<(client_options) --database="$DB_NAME"
  else
    find /wp-content -mindepth 1 -delete
    tar -C /wp-content -xzf "$file"
  fi
  log "restored the $part of $1"
}

# A scratch server on a socket of its own, no networking: nothing live is touched.
scratch_sql() { mysql --socket=/tmp/rehearsal/mysqld.sock -uroot -N "$@"; }

rehearse_database() {
  local file tables count server
  file=$(checked_artifact "$1") || {
    echo "$file"
    return 1
  }
  mkdir -p /tmp/rehearsal && chown mysql:mysql /tmp/rehearsal
  if command -v mariadb-install-db >/dev/null; then
    mariadb-install-db --user=mysql --datadir=/tmp/rehearsal/data --auth-root-authentication-method=normal >/dev/null
    server=mariadbd
  else
    mysqld --initialize-insecure --user=mysql --datadir=/tmp/rehearsal/data 2>/dev/null
    server=mysqld
  fi
  "$server" --user=mysql --datadir=/tmp/rehearsal/data --socket=/tmp/rehearsal/mysqld.sock --skip-networking \
    --pid-file=/tmp/rehearsal/mysqld.pid --innodb-buffer-pool-size=64M >/tmp/rehearsal/server.log 2>&1 &
  for _ in $(seq 120); do
    mysqladmin --socket=/tmp/rehearsal/mysqld.sock -uroot ping >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! gunzip -c "$file" | scratch_sql; then
    echo "FAIL: the dump of backup $1 does not load into a scratch server"
    return 1
  fi
  tables=$(scratch_sql -e "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '$DB_NAME'")
  echo "tables $tables"
  for table in options posts users comments postmeta; do
    if ! count=$(scratch_sql "$DB_NAME" -e "SELECT COUNT(*) FROM wp_$table" 2>&1); then
      echo "FAIL: backup $1 has no readable wp_$table table: $count"
      return 1
    fi
    echo "rows wp_$table $count"
  done
  echo "published $(scratch_sql "$DB_NAME" -e "SELECT COUNT(*) FROM wp_posts WHERE post_status = 'publish' AND post_type = 'post'")"
  if [ -n "${REHEARSE_POST_TITLE:-}" ]; then
    count=$(scratch_sql "$DB_NAME" -e "SELECT COUNT(*) FROM wp_posts WHERE post_status = 'publish' AND post_title = '${REHEARSE_POST_TITLE//\'/\'\'}'")
    [ "$count" -ge 1 ] || {
      echo "FAIL: backup $1 has no published post titled '$REHEARSE_POST_TITLE'"
      return 1
    }
    echo "post found"
  fi
  mysqladmin --socket=/tmp/rehearsal/mysqld.sock -uroot shutdown
}

rehearse_content() {
  local file listing
  file=$(checked_artifact "$1") || {
    echo "$file"
    return 1
  }
  # Listed once into a variable: `tar | grep -q` fails under pipefail when grep stops reading early.
  if ! listing=$(tar -tzf "$file"); then
    echo "FAIL: the wp-content archive of backup $1 can't be read"
    return 1
  fi
  grep -q '^\./themes/' <<<"$listing" || {
    echo "FAIL: the wp-content archive of backup $1 has no themes"
    return 1
  }
  echo "entries $(wc -l <<<"$listing")"
}

list() {
  local dir parts manifest_file
  for dir in "$backups"/*Z/; do
    [ -d "$dir" ] || continue
    parts=""
    for manifest_file in database.json wp-content.json; do
      [ -f "$dir/$manifest_file" ] && parts="$parts $(cat "$dir/$manifest_file")"
    done
    echo "backup $(basename "$dir")$parts"
  done
  if [ -e "$backups/.paused" ]; then echo "paused $(cat "$backups/.paused")"; fi
}

case "$mode" in
  once) run_once "${BACKUP_STAMP:?once needs BACKUP_STAMP}" ;;
  list) list ;;
  pause)
    date -u +%Y-%m-%dT%H:%M:%SZ >"$backups/.paused"
    log "paused"
    ;;
  resume)
    rm -f "$backups/.paused"
    log "resumed"
    ;;
  restore) restore "${BACKUP_STAMP:?restore needs BACKUP_STAMP}" ;;
  rehearse)
    if [ "$part" = database ]; then
      rehearse_database "${BACKUP_STAMP:?rehearse needs BACKUP_STAMP}"
    else
      rehearse_content "${BACKUP_STAMP:?rehearse needs BACKUP_STAMP}"
    fi
    echo "rehearsal: PASS"
    ;;
  schedule)
    trap 'stopping=true' TERM INT
    log "every $BACKUP_INTERVAL_MINUTES min, keeping $BACKUP_KEEP"
    while [ "$stopping" = false ]; do
      touch "$heartbeat"
      if [ -e "$backups/.paused" ]; then
        [ "${paused:-}" = yes ] || log "paused (remove $backups/.paused, or: python -m swarmops.backups resume)"
        paused=yes
      else
        paused=no
        run_once "$(current_stamp)" || log "failed; retrying in 30 s"
      fi
      # Interruptible: a stop ends the wait, while a backup in progress is finished first.
      sleep 30 &
      wait $! || true
    done
    log "stopped"
    ;;
  *)
    log "unknown mode $mode"
    exit 2
    ;;
esac
