#!/usr/bin/env bash
# Start or stop the server deployment on this computer's loopback: PostgreSQL, a Chroma server, two app
# workers (each with its own ASSISTANT_HOME) and HAProxy in front of them.
#
#   bash scripts/servers.sh start   installs what is missing (Debian packages, as root), starts everything,
#                                   prints `URL <proxy url>` and one `ENV NAME=VALUE` line per setting a CLI
#                                   process needs to use the same servers
#   bash scripts/servers.sh stop    ends exactly the processes that `start` recorded
#   bash scripts/servers.sh status  prints what runs
#
# Ports and the state folder can be changed with ASSISTANT_SERVERS_DIR, PG_PORT, CHROMA_PORT, PROXY_PORT,
# WORKER_PORTS ("57861 57862").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
STATE="${ASSISTANT_SERVERS_DIR:-/tmp/assistant-servers}"
PG_PORT="${PG_PORT:-55432}"
CHROMA_PORT="${CHROMA_PORT:-58000}"
PROXY_PORT="${PROXY_PORT:-57860}"
read -r -a WORKER_PORTS <<< "${WORKER_PORTS:-57861 57862}"
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
DATABASE_URL="postgresql+psycopg://assistant@127.0.0.1:${PG_PORT}/assistant"
CHROMA_URL="http://127.0.0.1:${CHROMA_PORT}"
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False ANONYMIZED_TELEMETRY=False

log() { echo "servers: $*" >&2; }

install_missing() {
  local packages=()
  [ -x "${PG_BIN}/postgres" ] || packages+=(postgresql)
  command -v haproxy >/dev/null || packages+=(haproxy)
  command -v curl >/dev/null || packages+=(curl)
  if [ "${#packages[@]}" -gt 0 ]; then
    log "installing ${packages[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  fi
  [ -x .venv/bin/python ] || bash scripts/setup.sh >&2
  if ! .venv/bin/python -c "import psycopg, alembic" 2>/dev/null; then
    log "installing psycopg and alembic into .venv"
    .venv/bin/python -m pip install --quiet "psycopg[binary]>=3.2" "alembic>=1.13" >&2
  fi
}

wait_for() {  # wait_for SECONDS COMMAND...
  local seconds="$1"; shift
  local until=$((SECONDS + seconds))
  while [ "$SECONDS" -lt "$until" ]; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  return 1
}

record() { echo "$1 $2" >> "$STATE/pids"; }

start_postgres() {
  local data="$STATE/pg"
  mkdir -p "$STATE/pgsock" "$STATE/pglog"
  chown postgres: "$STATE/pgsock" "$STATE/pglog"
  if [ ! -s "$data/PG_VERSION" ]; then
    mkdir -p "$data" && chown postgres: "$data"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$STATE/pglog/initdb.log" 2>&1
  fi
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" -l "$STATE/pglog/postgres.log" -w -t 60 \
    -o "-p $PG_PORT -k $STATE/pgsock -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
  record pg_ctl "$data"
  local psql=("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAq)
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'assistant'")" != "1" ]; then
    "${psql[@]}" -c "CREATE ROLE assistant LOGIN"
  fi
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'assistant'")" != "1" ]; then
    "${psql[@]}" -c "CREATE DATABASE assistant OWNER assistant ENCODING 'UTF8'"
  fi
}

start_chroma() {
  mkdir -p "$STATE/chroma"
  nohup .venv/bin/chroma run --path "$STATE/chroma" --host 127.0.0.1 --port "$CHROMA_PORT" >"$STATE/chroma.log" 2>&1 &
  record pid $!
  wait_for 60 curl -sf "$CHROMA_URL/api/v2/heartbeat" || { log "Chroma did not start (see $STATE/chroma.log)"; exit 1; }
}

server_env() {  # PYTHONPATH: this checkout's package, whatever the virtualenv was installed from
  env PYTHONPATH="$ROOT" ASSISTANT_DATABASE_URL="$DATABASE_URL" ASSISTANT_CHROMA_URL="$CHROMA_URL" "$@"
}

start_workers() {
  # One build before the workers start, so that they do not each wait for it.
  server_env ASSISTANT_HOME="$STATE/cli" .venv/bin/python -m assistant.cli index build >&2
  server_env ASSISTANT_HOME="$STATE/cli" .venv/bin/python -m assistant.cli reader train >&2
  local number=0
  for port in "${WORKER_PORTS[@]}"; do
    number=$((number + 1))
    local home="$STATE/worker$number"
    mkdir -p "$home/cache"
    cp -n "$STATE"/cli/cache/* "$home/cache/" 2>/dev/null || true  # word vectors and the reader model
    # `env` execs the worker, so that $! is the worker itself (a shell function would be a subshell).
    env PYTHONPATH="$ROOT" ASSISTANT_DATABASE_URL="$DATABASE_URL" ASSISTANT_CHROMA_URL="$CHROMA_URL" \
      ASSISTANT_HOME="$home" nohup .venv/bin/python app.py --host 127.0.0.1 --port "$port" \
      >"$STATE/worker$number.log" 2>&1 &
    record pid $!
  done
  for port in "${WORKER_PORTS[@]}"; do
    wait_for 180 curl -sf "http://127.0.0.1:$port/" || { log "worker on $port did not start (see $STATE/worker*.log)"; exit 1; }
  done
}

write_haproxy_config() {
  local servers="" number=0
  for port in "${WORKER_PORTS[@]}"; do
    number=$((number + 1))
    servers+="    server w$number 127.0.0.1:$port check inter 1s fall 2 rise 2 cookie w$number"$'\n'
  done
  cat > "$STATE/haproxy.cfg" <<EOF
# Generated by scripts/servers.sh. Gradio keeps each queued event in the worker that accepted it (the POST
# and the event stream that follows must reach the same worker), so clients stick to a worker by a cookie;
# a worker that stops accepting connections is taken out within about 2 s and its clients move to another worker.
global
    maxconn 2000
    tune.bufsize 65536  # a retried request must fit in one buffer (a long consultation's history)
    pidfile $STATE/haproxy.pid

defaults
    mode http
    option forwardfor
    option redispatch 1
    retries 3
    # A request that reached a worker which then stopped before answering (no response at all) is sent to
    # another worker; a stream already under way cannot be, and the page sends that question again.
    retry-on conn-failure empty-response junk-response
    timeout connect 3s
    timeout client 10m
    timeout server 10m
    timeout tunnel 1h
    timeout http-keep-alive 30s

frontend assistant
    bind 127.0.0.1:$PROXY_PORT
    default_backend workers

backend workers
    balance roundrobin
    cookie ASSISTANT_WORKER insert indirect nocache httponly
    # A TCP check: a killed worker refuses connections at once, while a busy one may answer a page late
    # (an HTTP check then took both workers out under load: 503 for everyone).
    timeout check 3s
$servers
EOF
}

start_proxy() {
  write_haproxy_config
  haproxy -c -q -f "$STATE/haproxy.cfg"
  haproxy -D -f "$STATE/haproxy.cfg"
  wait_for 10 test -s "$STATE/haproxy.pid"
  record pid "$(cat "$STATE/haproxy.pid")"
  wait_for 30 curl -sf "http://127.0.0.1:$PROXY_PORT/" || { log "the proxy does not answer"; exit 1; }
}

stop_all() {
  [ -f "$STATE/pids" ] || { log "nothing recorded in $STATE/pids"; return 0; }
  tac "$STATE/pids" | while read -r kind value; do
    case "$kind" in
      pid)
        if kill -0 "$value" 2>/dev/null; then
          kill "$value" 2>/dev/null || true
          for _ in $(seq 1 40); do kill -0 "$value" 2>/dev/null || break; sleep 0.25; done
          kill -9 "$value" 2>/dev/null || true
        fi
        ;;
      pg_ctl)
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$value" -m fast -w stop >/dev/null 2>&1 || true
        ;;
    esac
  done
  rm -f "$STATE/pids"
  log "stopped"
}

case "${1:-}" in
  start)
    if [ -f "$STATE/pids" ]; then
      log "already started (run: bash scripts/servers.sh stop)"; exit 1
    fi
    mkdir -p "$STATE"
    install_missing
    : > "$STATE/pids"
    trap 'stop_all' ERR
    start_postgres
    start_chroma
    start_workers
    start_proxy
    trap - ERR
    echo "URL http://127.0.0.1:$PROXY_PORT/"
    echo "ENV ASSISTANT_DATABASE_URL=$DATABASE_URL"
    echo "ENV ASSISTANT_CHROMA_URL=$CHROMA_URL"
    for number in $(seq 1 "${#WORKER_PORTS[@]}"); do
      # worker N is line N + 2 of the pids file (after PostgreSQL and Chroma)
      echo "WORKER http://127.0.0.1:${WORKER_PORTS[$((number - 1))]}/ $(sed -n "$((number + 2))p" "$STATE/pids" | cut -d' ' -f2)"
    done
    ;;
  stop)
    stop_all
    ;;
  status)
    cat "$STATE/pids" 2>/dev/null || echo "not started"
    ;;
  *)
    echo "usage: bash scripts/servers.sh start|stop|status" >&2
    exit 2
    ;;
esac
