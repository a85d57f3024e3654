#!/usr/bin/env bash
# Bring up a Docker Engine that is a single-node swarm manager, for tests/engine.
#
# Idempotent; meant for CI (root on a fresh Debian machine) and for local use:
#   * apt-get installs docker.io, busybox-static, iproute2 if missing;
#   * starts dockerd in the background if nothing answers on /var/run/docker.sock
#     (log: $WPSWARM_DOCKERD_LOG, default /var/log/wpswarm-dockerd.log; its pid is
#     recorded in /run/wpswarm-engine-up.pid so scripts/engine-down.sh stops only it);
#   * runs `docker swarm init --advertise-addr 127.0.0.1` if the node is in no swarm.
# Prints one line with the state it found/left.  If no engine can be had (no root,
# no privileges for dockerd in a container, apt failure...) it still exits 0, but
# writes the reason to $WPSWARM_ENGINE_UNAVAILABLE_FILE (default
# /tmp/wpswarm-engine-unavailable): the pytest fixtures then skip with that reason
# (or fail, with WPSWARM_REQUIRE_ENGINE=1).  The file is removed once the engine is up.
set -u

UNAVAILABLE_FILE=${WPSWARM_ENGINE_UNAVAILABLE_FILE:-/tmp/wpswarm-engine-unavailable}
DOCKERD_LOG=${WPSWARM_DOCKERD_LOG:-/var/log/wpswarm-dockerd.log}
PID_FILE=/run/wpswarm-engine-up.pid
SOCKET=/var/run/docker.sock
WAIT_SECONDS=${WPSWARM_ENGINE_WAIT:-60}
export DOCKER_HOST=unix://$SOCKET

say() { echo "wpswarm engine-up: $*"; }

unavailable() {
    printf '%s\n' "$1" >"$UNAVAILABLE_FILE"
    say "ENGINE UNAVAILABLE - $1 (recorded in $UNAVAILABLE_FILE; engine tests will skip)"
    exit 0
}

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

static_busybox() {
    [ -x /bin/busybox ] || return 1
    dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' && return 0
    LC_ALL=C ldd /bin/busybox 2>&1 | grep -q 'not a dynamic executable'
}

[ "$(id -u)" = 0 ] || unavailable "scripts/engine-up.sh must run as root (uid $(id -u))"

# --- packages ---------------------------------------------------------------
missing=()
{ command -v dockerd && command -v docker; } >/dev/null 2>&1 || missing+=(docker.io)
static_busybox || missing+=(busybox-static)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
installed=""
if [ ${#missing[@]} -gt 0 ]; then
    apt_log=/tmp/wpswarm-engine-up-apt.log
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$apt_log" 2>&1; then
        unavailable "apt-get install ${missing[*]} failed: $(tail -n 3 "$apt_log" | tr '\n' ' ')"
    fi
    installed="installed ${missing[*]}; "
fi

# --- engine -----------------------------------------------------------------
engine_state="found running"
if ! engine_answers; then
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    log_start=1
    [ -f "$DOCKERD_LOG" ] && log_start=$(($(wc -l <"$DOCKERD_LOG") + 1))
    # No registry is reachable in CI: let swarm tasks use local images without a pull attempt.
    DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    launcher=$!
    deadline=$((SECONDS + WAIT_SECONDS))
    until engine_answers; do
        if ! kill -0 "$launcher" 2>/dev/null; then
            why=$(tail -n +"$log_start" "$DOCKERD_LOG" | grep -E 'level=(fatal|error)|failed to start|not permitted' | tail -n 2 | tr '\n' ' ')
            unavailable "dockerd exited during startup (no privileges in this container?): ${why:-see $DOCKERD_LOG}"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            kill "$launcher" 2>/dev/null
            unavailable "dockerd did not answer within ${WAIT_SECONDS}s (log: $DOCKERD_LOG)"
        fi
        sleep 0.5
    done
    pid=$(cat /var/run/docker.pid 2>/dev/null || echo "$launcher")
    echo "$pid" >"$PID_FILE"
    engine_state="started dockerd pid $pid (log $DOCKERD_LOG)"
fi

# --- swarm ------------------------------------------------------------------
swarm=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null)
case "$swarm" in
    "inactive "*)
        out=$(docker swarm init --advertise-addr 127.0.0.1 2>&1) || unavailable "docker swarm init failed: $out"
        swarm_state="swarm initialised (advertise 127.0.0.1)"
        ;;
    "active true") swarm_state="swarm manager already active" ;;
    "active false") unavailable "this engine is a swarm worker; tests need a manager" ;;
    *) unavailable "swarm in unexpected state '$swarm' (docker swarm leave --force, then rerun)" ;;
esac

rm -f "$UNAVAILABLE_FILE"
version=$(docker version --format '{{.Server.Version}}' 2>/dev/null)
say "${installed}engine ${engine_state}, Docker ${version}; ${swarm_state}; node $(docker info --format '{{.Swarm.NodeID}}' 2>/dev/null)"
