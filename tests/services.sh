#!/usr/bin/env bash
# Make sure the real services the tests use are up: start them when installed but stopped,
# install Chromium when missing (root only), and fail with a clear message otherwise.
set -euo pipefail

need() { echo "make test: $1" >&2; exit 1; }

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null; then
    echo "starting PostgreSQL…"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  pg_isready -q -h 127.0.0.1 -p 5432 || need "PostgreSQL is not running on 127.0.0.1:5432 and could not be started (install it: apt-get install postgresql)"
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null; then
    echo "starting Redis…"
    mkdir -p /tmp/nomoat-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /tmp/nomoat-redis \
      --logfile /tmp/nomoat-redis/redis.log
    for _ in $(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
  fi
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || need "Redis is not running on 127.0.0.1:6379 and could not be started (install it: apt-get install redis-server)"
fi

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Chromium for the browser tests…"
    (apt-get install -y -q chromium >/dev/null 2>&1) || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)
  fi
  [ -x /usr/bin/chromium ] || need "Chromium is missing (apt-get install chromium)"
fi
if ! command -v aria2c >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing aria2 for the Metalink download tests…"
    (apt-get install -y -q aria2 >/dev/null 2>&1) || (apt-get update -q >/dev/null && apt-get install -y -q aria2 >/dev/null)
  fi
  command -v aria2c >/dev/null || need "aria2 is missing (apt-get install aria2)"
fi
if ! command -v nginx >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing nginx for the cluster tests (deploy/cluster.sh's proxy host)…"
    (apt-get install -y -q nginx-light >/dev/null 2>&1) || (apt-get update -q >/dev/null && apt-get install -y -q nginx-light >/dev/null)
  fi
  command -v nginx >/dev/null || need "nginx is missing (apt-get install nginx-light)"
fi
echo "services: PostgreSQL, Redis, Chromium, aria2 and nginx are ready"
