# shellcheck shell=sh
# Sourced by every stand-in (see standins.py).
cr=$(printf '\r')
log() { echo "[$STANDIN] $*" >&2; }
fail() { log "FATAL: $*"; exit 1; }
# A persistent TCP server on port $1: each connection runs $2 with stdin/stdout on the socket.
serve() {
    nc -ll -p "$1" -e "$2" &
    server=$!
    trap 'kill "$server" 2>/dev/null; exit 0' TERM INT
    wait "$server"
}
# HTTP for the handlers: read the request line and headers, answer once, close.
read_request() {
    # shellcheck disable=SC2034 # method and proto: read to get at the path
    IFS=" " read -r method path proto || exit 0
    while IFS= read -r line; do [ -z "${line%"$cr"}" ] && break; done
}
respond() {
    printf 'HTTP/1.0 %s\r\nContent-Type: text/plain\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s\n' \
        "$1" "$((${#2} + 1))" "$2"
}
