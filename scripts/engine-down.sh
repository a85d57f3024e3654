#!/usr/bin/env bash
# Stop the dockerd that scripts/engine-up.sh started (and only that one), for local use.
# The swarm state stays in /var/lib/docker; the next engine-up.sh reuses it.
set -u

PID_FILE=/run/wpswarm-engine-up.pid
say() { echo "wpswarm engine-down: $*"; }

if [ ! -s "$PID_FILE" ]; then
    say "nothing to stop (no $PID_FILE: the running engine, if any, was not started by engine-up.sh)"
    exit 0
fi
pid=$(cat "$PID_FILE")
if ! kill -0 "$pid" 2>/dev/null || ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q '^dockerd'; then
    rm -f "$PID_FILE"
    say "dockerd pid $pid from $PID_FILE is no longer running; nothing to stop"
    exit 0
fi
kill -TERM "$pid"
for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
done
if kill -0 "$pid" 2>/dev/null; then
    say "dockerd pid $pid still running after 30s; sending SIGKILL"
    kill -KILL "$pid"
fi
rm -f "$PID_FILE"
say "stopped dockerd pid $pid"
