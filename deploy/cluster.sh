#!/usr/bin/env bash
# The production topology of deploy/README.md as a real cluster: each host below is a network namespace with its
# own address on one bridge, running exactly the processes and environment that README documents.
#
#   deploy/cluster.sh up | e2e | status | down          start it, drive a full flow through the proxy, show, remove
#   deploy/cluster.sh kill HOST | start HOST            SIGKILL every process of a host / start its processes again
#   deploy/cluster.sh manage ARGS...                    manage.py with the cluster's environment (on $ADMIN_HOST)
#   deploy/cluster.sh client CMD...                     CMD on the client host (REQUESTS_CA_BUNDLE, NOMOAT_* set)
#   deploy/cluster.sh throttle HOST RATE|off            limit what the bridge sends to HOST (tc tbf), for fault tests
#
# On real machines: replace the host table's addresses by your machines' names, run each host's `host_command`
# there with `host_environment`, and drop the namespace plumbing (`net_up`/`net_down`).
set -euo pipefail

# --- Hosts: name, address, and the one process each runs (README's process table) ----------------------------------
SUBNET=${CLUSTER_SUBNET:-10.77.0}
HOSTS_TABLE="
db          $SUBNET.10   postgresql
broker      $SUBNET.11   redis-server
s3          $SUBNET.12   moto_server
web1        $SUBNET.21   gunicorn
web2        $SUBNET.22   gunicorn
proxy       $SUBNET.30   nginx
uploads     $SUBNET.41   celery-worker
builds      $SUBNET.42   celery-worker
evals       $SUBNET.43   celery-worker
training    $SUBNET.44   celery-worker
federation  $SUBNET.45   celery-worker
beat        $SUBNET.50   celery-beat
client      $SUBNET.99   (the outside world: e2e and the fault tests' clients run here)
"
ROOT_ADDRESS=$SUBNET.1                  # the machine itself, on the bridge: the script reaches every host from it
PUBLIC_HOST=${CLUSTER_PUBLIC_HOST:-hub.cluster.test}
ADMIN_HOST=web1                         # where migrations, seeding and `manage` run
BUCKET=nomoat-blobs
SEED_ARGS=${CLUSTER_SEED_ARGS:---no-users}
WEB_WORKERS=${CLUSTER_WEB_WORKERS:-4}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER_DIR=${CLUSTER_DIR:-$REPO/var/cluster}
VENV=${CLUSTER_VENV:-$REPO/.venv}
NS_PREFIX=${CLUSTER_NS_PREFIX:-nmt-}    # namespaces nmt-db, nmt-web1, ...
BRIDGE=${CLUSTER_BRIDGE:-nmt-br0}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
SECRETS=$CLUSTER_DIR/secrets.env        # made once by `up`: SECRET_KEY and the services' passwords
TOKENS=$CLUSTER_DIR/tokens.env          # the e2e users' API tokens
CA_DIR=$CLUSTER_DIR/ca

hosts() { awk 'NF {print $1}' <<<"$HOSTS_TABLE"; }
address() { awk -v h="$1" '$1 == h {print $2}' <<<"$HOSTS_TABLE"; }
ns() { echo "$NS_PREFIX$1"; }
die() { echo "cluster: $*" >&2; exit 1; }
log() { printf '%s cluster: %s\n' "$(date -u +%H:%M:%S)" "$*"; }
known_host() { [[ -n $(address "$1") ]] || die "unknown host '$1'; expected one of: $(hosts | xargs)"; }

# --- Per-host environment: exactly the variables deploy/README.md documents -----------------------------------------
host_environment() {
  local host=$1
  printf '%s\n' "PATH=$VENV/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" "HOME=$CLUSTER_DIR/$host/home" LANG=C.UTF-8
  case $host in
    db | broker | proxy | client) return 0 ;;
    # moto would read the bucket from a host name's first label (s3.internal): path-style addressing only
    s3) echo S3_IGNORE_SUBDOMAIN_BUCKETNAME=1; return 0 ;;
  esac
  cat <<EOF
NOMOAT_ENV=production
SECRET_KEY=$SECRET_KEY
ALLOWED_HOSTS=$PUBLIC_HOST
CSRF_TRUSTED_ORIGINS=https://$PUBLIC_HOST
NOMOAT_PUBLIC_URL=https://$PUBLIC_HOST
SITE_URL=https://$PUBLIC_HOST
DATABASE_URL=postgres://nomoat:$DB_PASSWORD@db.internal:5432/nomoat
CELERY_BROKER_URL=redis://:$REDIS_PASSWORD@broker.internal:6379/0
BLOB_STORE=s3://$BUCKET/prod
S3_ENDPOINT_URL=http://s3.internal:9000
S3_PRESIGN_DOWNLOADS=false
AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
TRUSTED_PROXY_COUNT=1
NOMOAT_DATA_DIR=$CLUSTER_DIR/$host/data
NOMOAT_SIGNING_KEY=$CLUSTER_DIR/shared/keys/current.pem
SIGNING_KEY_DIR=$CLUSTER_DIR/shared/keys
NOMOAT_UPLOAD_DIR=$CLUSTER_DIR/shared/uploads
NOMOAT_TRAINING_DIR=$CLUSTER_DIR/shared/training
NOMOAT_MODEL_CACHE=${NOMOAT_MODEL_CACHE:-$REPO/.cache/models}
EOF
  case $host in
    builds) echo "OMP_NUM_THREADS=1" ;;
    training) echo "NOMOAT_TRAINING_DEVICE=cpu" ;;
  esac
}

# The command each host runs (README's process table); empty for hosts that run nothing of their own.
host_command() {
  local host=$1 celery=("$VENV/bin/celery" -A hub)
  case $host in
    db) echo "$PG_BIN/postgres -D $CLUSTER_DIR/db/data" ;;
    broker) echo "redis-server --bind $(address broker) --port 6379 --requirepass ${REDIS_PASSWORD:-} --protected-mode no
                  --dir $CLUSTER_DIR/broker --appendonly yes --save ''" ;;
    s3) echo "$VENV/bin/moto_server -H $(address s3) -p 9000" ;;
    web1 | web2) echo "$VENV/bin/gunicorn hub.asgi:application --worker-class hub.asgi_worker.HeaderTimeoutWorker --asgi-lifespan off -b 0.0.0.0:8000
                       --workers $WEB_WORKERS --timeout 30 --keep-alive 5 --access-logfile -" ;;
    proxy) echo "nginx -c $CLUSTER_DIR/proxy/nginx.conf -g 'daemon off;'" ;;
    uploads | federation) echo "${celery[*]} worker -Q $host --concurrency 4 -n $host@%h -l INFO" ;;
    builds | evals | training) echo "${celery[*]} worker -Q $host --concurrency 1 -n $host@%h -l INFO" ;;
    beat) echo "${celery[*]} beat -l INFO -s $CLUSTER_DIR/beat/data/celerybeat-schedule" ;;
  esac
}

# --- Network: a bridge, one namespace per host with a veth into it, names in /etc/netns/<ns>/hosts -----------------
hosts_file() {
  echo "127.0.0.1 localhost"
  for host in $(hosts); do echo "$(address "$host") $host.internal"; done
  echo "$(address proxy) $PUBLIC_HOST"
}

net_up() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || {
    ip link add "$BRIDGE" type bridge
    ip addr add "$ROOT_ADDRESS/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
  }
  local i=0 host
  for host in $(hosts); do
    i=$((i + 1))
    local name; name=$(ns "$host")
    [[ -e /run/netns/$name ]] && continue
    ip netns add "$name"
    ip link delete "nmtv$i" 2>/dev/null || true  # left by a namespace the kernel is still tearing down
    ip link add "nmtv$i" type veth peer name "nmtp$i"
    ip link set "nmtp$i" netns "$name"
    ip link set "nmtv$i" master "$BRIDGE" up
    ip -n "$name" link set "nmtp$i" name eth0
    ip -n "$name" addr add "$(address "$host")/24" dev eth0
    ip -n "$name" link set eth0 up
    ip -n "$name" link set lo up
    mkdir -p "/etc/netns/$name"
    hosts_file >"/etc/netns/$name/hosts"
  done
}

net_down() {
  local name link
  # The bridge-side ends first: deleting a namespace frees its veth asynchronously, and an `up` right after would
  # find the old names still taken.
  for link in $(ip -o link show type veth | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^nmtv' || true); do
    ip link delete "$link"
  done
  for name in $(ip netns list | awk '{print $1}' | grep "^$NS_PREFIX" || true); do
    ip netns delete "$name"
    rm -rf "/etc/netns/$name"
  done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
  return 0
}

# --- Processes ------------------------------------------------------------------------------------------------------
in_host() {  # in_host HOST CMD...: CMD in HOST's namespace with HOST's environment, in the foreground
  local host=$1; shift
  local env; mapfile -t env < <(host_environment "$host")
  ip netns exec "$(ns "$host")" env -i "${env[@]}" "$@"
}

launch() {  # launch HOST: start HOST's process in the background, its log and pid under $CLUSTER_DIR/HOST/
  local host=$1 cmd; cmd=$(host_command "$host" | tr '\n' ' ')
  [[ -n ${cmd// /} ]] || return 0
  local dir=$CLUSTER_DIR/$host
  mkdir -p "$dir/home" "$dir/data"
  if alive "$host"; then log "$host already runs (pid $(cat "$dir/process.pid"))"; return 0; fi
  local env; mapfile -t env < <(host_environment "$host")
  local user=()
  [[ $host == db ]] && user=(runuser -u postgres --)
  # setsid: the process leads its own session, so nothing here waits on it; eval keeps quoted arguments ('' above)
  (cd "$REPO" && eval "exec setsid ip netns exec $(ns "$host") ${user[*]} env -i ${env[*]@Q} $cmd" \
      >>"$dir/process.log" 2>&1 </dev/null) &
  echo $! >"$dir/process.pid"
}

alive() { [[ -f $CLUSTER_DIR/$1/process.pid ]] && kill -0 "$(cat "$CLUSTER_DIR/$1/process.pid")" 2>/dev/null; }

wait_tcp() {  # wait_tcp HOST PORT SECONDS
  local deadline=$((SECONDS + $3))
  until timeout 1 bash -c ": </dev/tcp/$(address "$1")/$2" 2>/dev/null; do
    alive "$1" || die "$1 exited before listening on :$2; see $CLUSTER_DIR/$1/process.log"
    ((SECONDS < deadline)) || die "$1 does not listen on :$2 after $3 s; see $CLUSTER_DIR/$1/process.log"
    sleep 0.5
  done
}

kill_host() {  # SIGKILL every process in the host's namespace (what pulling its power cord does)
  local pids; pids=$(ip netns pids "$(ns "$1")" 2>/dev/null || true)
  # shellcheck disable=SC2086  # one argument per pid
  [[ -n $pids ]] && kill -9 $pids 2>/dev/null
  rm -f "$CLUSTER_DIR/$1/process.pid"
  [[ $1 == db ]] && rm -f "$CLUSTER_DIR/db/data/postmaster.pid"
  return 0
}

# --- One-time state: secrets, the CA, the database, the bucket -----------------------------------------------------
make_secrets() {
  [[ -f $SECRETS ]] && return 0
  local rand="$VENV/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))'"
  (umask 077; : >"$SECRETS")
  cat >"$SECRETS" <<EOF
SECRET_KEY=$(eval "$rand")
DB_PASSWORD=$(eval "$rand" | tr -dc 'A-Za-z0-9' | head -c 32)
REDIS_PASSWORD=$(eval "$rand" | tr -dc 'A-Za-z0-9' | head -c 32)
AWS_ACCESS_KEY_ID=cluster
AWS_SECRET_ACCESS_KEY=$(eval "$rand" | tr -dc 'A-Za-z0-9' | head -c 40)
EOF
}

make_ca() {  # a CA of our own and a server certificate for the public name (and the proxy's address) signed by it
  [[ -f $CA_DIR/server.pem ]] && return 0
  mkdir -p "$CA_DIR"
  openssl req -x509 -new -nodes -newkey rsa:2048 -days 30 -subj "/CN=nomoat cluster CA" \
    -keyout "$CA_DIR/ca.key" -out "$CA_DIR/ca.pem" 2>/dev/null
  openssl req -new -nodes -newkey rsa:2048 -subj "/CN=$PUBLIC_HOST" \
    -keyout "$CA_DIR/server.key" -out "$CA_DIR/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:%s,IP:%s\nextendedKeyUsage=serverAuth\n' "$PUBLIC_HOST" "$(address proxy)" \
    >"$CA_DIR/server.ext"
  openssl x509 -req -in "$CA_DIR/server.csr" -CA "$CA_DIR/ca.pem" -CAkey "$CA_DIR/ca.key" -CAcreateserial \
    -days 30 -extfile "$CA_DIR/server.ext" -out "$CA_DIR/server.pem" 2>/dev/null
}

db_init() {
  [[ -f $CLUSTER_DIR/db/data/PG_VERSION ]] && return 0
  mkdir -p "$CLUSTER_DIR/db/data"
  chown -R postgres "$CLUSTER_DIR/db"
  chmod 700 "$CLUSTER_DIR/db/data"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$CLUSTER_DIR/db/data" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 >"$CLUSTER_DIR/db/initdb.log"
  cat >>"$CLUSTER_DIR/db/data/postgresql.conf" <<EOF
listen_addresses = '$(address db)'
unix_socket_directories = '$CLUSTER_DIR/db'
max_connections = 200
EOF
  echo "host all all $SUBNET.0/24 scram-sha-256" >>"$CLUSTER_DIR/db/data/pg_hba.conf"
}

db_create() {
  local psql=(ip netns exec "$(ns db)" runuser -u postgres -- "$PG_BIN/psql" -h "$CLUSTER_DIR/db" -U postgres -qAt)
  [[ $("${psql[@]}" -c "select 1 from pg_roles where rolname = 'nomoat'") == 1 ]] && return 0
  "${psql[@]}" -c "create role nomoat login password '$DB_PASSWORD'" -c "create database nomoat owner nomoat"
}

render_nginx() {  # the documented example (deploy/nginx.conf) with this cluster's name and certificate
  local dir=$CLUSTER_DIR/proxy
  mkdir -p "$dir/tmp" "$dir/data"
  chown www-data "$dir/tmp" 2>/dev/null || true
  sed -E -e "s#^(\s*ssl_certificate\s+).*;#\1$CA_DIR/server.pem;#" \
         -e "s#^(\s*ssl_certificate_key\s+).*;#\1$CA_DIR/server.key;#" \
         -e "s#hub\.example\.com#$PUBLIC_HOST#g" "$REPO/deploy/nginx.conf" >"$dir/site.conf"
  grep -q "web1.internal" "$dir/site.conf" || die "deploy/nginx.conf no longer names web1.internal; update render_nginx"
  cat >"$dir/nginx.conf" <<EOF
# Rendered by deploy/cluster.sh from deploy/nginx.conf; edit that file, not this one.
user www-data;
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    access_log $dir/access.log;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    include $dir/site.conf;
}
EOF
}

# --- Starting hosts -------------------------------------------------------------------------------------------------
start_host() {
  local host=$1
  known_host "$host"
  # shellcheck disable=SC1090
  source "$SECRETS"
  case $host in
    db) launch db; wait_tcp db 5432 60 ;;
    broker) mkdir -p "$CLUSTER_DIR/broker"; launch broker; wait_tcp broker 6379 30 ;;
    s3) launch s3; wait_tcp s3 9000 60 ;;
    web1 | web2) launch "$host"; wait_tcp "$host" 8000 120 ;;
    proxy) render_nginx; launch proxy; wait_tcp proxy 443 30 ;;
    client) ;;
    *) launch "$host" ;;
  esac
}

create_bucket() {  # from the machine itself, like an operator with the object store's console
  env -i PATH="$VENV/bin:/usr/bin:/bin" AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
    AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" "$VENV/bin/python" - "$(address s3)" "$BUCKET" <<'EOF'
import sys
import boto3
s3 = boto3.client("s3", endpoint_url=f"http://{sys.argv[1]}:9000", region_name="us-east-1")
if sys.argv[2] not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
    s3.create_bucket(Bucket=sys.argv[2])
EOF
}

make_e2e_users() {  # an uploader and a moderator, each with a write token, for e2e and the fault tests
  [[ -f $TOKENS ]] && return 0
  (umask 077; : >"$TOKENS.tmp")
  in_host "$ADMIN_HOST" "$VENV/bin/python" "$REPO/manage.py" shell -c "
from hub.accounts.models import Role, User
from hub.accounts.services import api_token_create, user_create
for name, role, var in (('e2e-uploader', Role.USER, 'UPLOADER'), ('e2e-moderator', Role.MODERATOR, 'MODERATOR')):
    user = User.objects.filter(username=name).first() or user_create(username=name, password=None, role=role)
    print(f'{var}_TOKEN={api_token_create(user=user, name=\"cluster e2e\", scope=\"write\").raw}')
" | grep -E '^[A-Z]+_TOKEN=' >"$TOKENS.tmp"  # the shell prints a banner of its own on stdout
  mv "$TOKENS.tmp" "$TOKENS"
}

cmd_up() {
  local started=$SECONDS
  command -v ip >/dev/null || die "iproute2's ip is missing (apt-get install -y iproute2)"
  command -v nginx >/dev/null || die "nginx is missing (apt-get install -y nginx-light)"
  [[ -x $PG_BIN/initdb ]] || die "PostgreSQL 15 is missing at $PG_BIN (apt-get install -y postgresql-15)"
  [[ -x $VENV/bin/gunicorn ]] || die "no venv at $VENV (make install)"
  mkdir -p "$CLUSTER_DIR"/shared/{keys,uploads,training}
  make_secrets
  # shellcheck disable=SC1090
  source "$SECRETS"
  make_ca
  net_up
  log "network: $(hosts | wc -l) hosts on $BRIDGE ($SUBNET.0/24), this machine at $ROOT_ADDRESS"
  db_init
  start_host db; db_create
  start_host broker
  start_host s3; create_bucket
  log "db, broker and object store up ($((SECONDS - started)) s)"
  mkdir -p "$CLUSTER_DIR/$ADMIN_HOST"/{home,data}
  in_host "$ADMIN_HOST" "$VENV/bin/python" "$REPO/manage.py" migrate --noinput -v 0
  # shellcheck disable=SC2086
  in_host "$ADMIN_HOST" "$VENV/bin/python" "$REPO/manage.py" seed_hub $SEED_ARGS
  in_host "$ADMIN_HOST" "$VENV/bin/python" "$REPO/manage.py" signing_key show >/dev/null  # made once, shared
  make_e2e_users
  log "migrated and seeded ($((SECONDS - started)) s)"
  for host in web1 web2; do
    mkdir -p "$CLUSTER_DIR/$host"/{home,data}
    in_host "$host" "$VENV/bin/python" "$REPO/manage.py" collectstatic --noinput -v 0
    start_host "$host"
  done
  start_host proxy
  for host in uploads builds evals training federation beat; do start_host "$host"; done
  local deadline=$((SECONDS + 60))
  until curl -fsS -o /dev/null --cacert "$CA_DIR/ca.pem" --resolve "$PUBLIC_HOST:443:$(address proxy)" \
      "https://$PUBLIC_HOST/api/v1/base-models"; do
    ((SECONDS < deadline)) || die "the proxy does not answer https://$PUBLIC_HOST/api/v1/base-models"
    sleep 1
  done
  log "up in $((SECONDS - started)) s: https://$PUBLIC_HOST/ (curl --cacert $CA_DIR/ca.pem --resolve" \
      "$PUBLIC_HOST:443:$(address proxy))"
}

cmd_status() {
  printf '%-11s %-13s %-8s %-7s %s\n' HOST ADDRESS PID STATE PROCESS
  local host
  for host in $(hosts); do
    local pid=- state=- cmd; cmd=$(host_command "$host" | awk 'NR == 1 {print $1}')  # awk reads it all: no SIGPIPE under pipefail
    if [[ -n $cmd ]]; then
      state=dead
      [[ -f $CLUSTER_DIR/$host/process.pid ]] && pid=$(cat "$CLUSTER_DIR/$host/process.pid")
      alive "$host" && state=alive
    fi
    [[ -e /run/netns/$(ns "$host") ]] || state="no-ns"
    printf '%-11s %-13s %-8s %-7s %s\n' "$host" "$(address "$host")" "$pid" "$state" "$(basename "${cmd:--}")"
  done
}

cmd_down() {
  local host
  for host in $(hosts); do kill_host "$host"; done
  net_down
  # The object store keeps its objects in memory: the database and caches would outlive them, so they go too.
  for host in $(hosts); do rm -rf "${CLUSTER_DIR:?}/$host/data" "${CLUSTER_DIR:?}/$host/home"; done
  rm -rf "${CLUSTER_DIR:?}/shared" "$CLUSTER_DIR/broker/appendonlydir" "$TOKENS"
  log "down"
}

cmd_client() {  # run a command on the client host, set up to talk to the hub through the proxy
  [[ -f $TOKENS ]] || die "no tokens at $TOKENS: run '$0 up' first"
  local tokens; mapfile -t tokens <"$TOKENS"
  mkdir -p "$CLUSTER_DIR/client/home"
  (cd "$REPO" && ip netns exec "$(ns client)" env -i PATH="$VENV/bin:/usr/bin:/bin" HOME="$CLUSTER_DIR/client/home" \
     LANG=C.UTF-8 REQUESTS_CA_BUNDLE="$CA_DIR/ca.pem" NOMOAT_ENDPOINT="https://$PUBLIC_HOST" \
     NOMOAT_TOKEN="$(grep ^UPLOADER_TOKEN= "$TOKENS" | cut -d= -f2-)" CLUSTER_DIR="$CLUSTER_DIR" "${tokens[@]}" "$@")
}

cmd_throttle() {  # shape the bridge's port towards HOST: what a slow link to that host looks like
  known_host "$1"
  local i; i=$(hosts | grep -nx "$1" | cut -d: -f1)
  tc qdisc del dev "nmtv$i" root 2>/dev/null || true
  [[ $2 == off ]] || tc qdisc add dev "nmtv$i" root tbf rate "$2" burst 64kb latency 50ms
}

main() {
  # shellcheck disable=SC1090
  [[ -f $SECRETS ]] && source "$SECRETS"
  local command=${1:-}
  shift || true
  case $command in
    up) cmd_up ;;
    e2e) cmd_client "$VENV/bin/python" "$REPO/deploy/cluster/e2e.py" "$@" ;;
    status) cmd_status ;;
    down) cmd_down ;;
    kill) [[ $# == 1 ]] || die "usage: $0 kill HOST"; known_host "$1"; kill_host "$1"; log "killed $1" ;;
    start) [[ $# == 1 ]] || die "usage: $0 start HOST"; start_host "$1"; log "started $1" ;;
    manage) in_host "$ADMIN_HOST" "$VENV/bin/python" "$REPO/manage.py" "$@" ;;
    client) cmd_client "$@" ;;
    throttle) [[ $# == 2 ]] || die "usage: $0 throttle HOST RATE|off (RATE as tc writes it: 16mbit)"
              cmd_throttle "$1" "$2" ;;
    *) die "usage: $0 up|e2e|status|down|kill HOST|start HOST|manage ARGS|client CMD|throttle HOST RATE|off" ;;
  esac
}

main "$@"
