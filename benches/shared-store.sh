#!/usr/bin/env bash
# The shared store's speed: 300 machines (none driver, records only) in a file store, then
# pushed into a shared store on moto's S3 server and on a three-member etcd cluster (all on
# loopback); hyperfine times `ls -q`, full `ls` and `ip` on each, warm (the working copy is
# current: one listing per command), and a cold first `ls -q` (an empty working copy: the
# whole store read). Needs scripts/setup (moto in the venv, etcd-server). Figures:
# BENCHMARKS.md.
#   benches/shared-store.sh [N]      # N machines, default 300
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-300}
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
cargo build --release -q -p dmw
dmw="$PWD/target/release/dmw"
venv=${DMW_PY_VENV:-/var/cache/dmw-testbed/venv}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
export AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench-secret DOCKER_CONFIG="$work/docker"

"$venv/bin/moto_server" -H 127.0.0.1 -p 25500 >/dev/null 2>&1 & pids+=($!)
cluster=m0=http://127.0.0.1:25611,m1=http://127.0.0.1:25621,m2=http://127.0.0.1:25631
for i in 0 1 2; do
  c=$((25610 + i * 10)); p=$((c + 1))
  etcd --name "m$i" --data-dir "$work/etcd$i" \
    --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
    --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
    --initial-cluster "$cluster" --initial-cluster-state new >/dev/null 2>&1 & pids+=($!)
done
for _ in $(seq 100); do
  "$venv/bin/python" -c "
import boto3; boto3.client('s3', endpoint_url='http://127.0.0.1:25500', region_name='us-east-1').create_bucket(Bucket='bench')" 2>/dev/null && break
  sleep 0.2
done
until etcdctl --endpoints 127.0.0.1:25610 endpoint health >/dev/null 2>&1; do sleep 0.2; done

local_store="$work/local"
for i in $(seq "$n"); do
  "$dmw" -s "$local_store" create -d none --url "tcp://127.0.0.1:1" "m$i" >/dev/null
done
s3="s3://bench/fleet?endpoint=http://127.0.0.1:25500"
etcd="etcd://127.0.0.1:25610,127.0.0.1:25620,127.0.0.1:25630/fleet"
export HOME="$work/home"
for url in "$s3" "$etcd"; do
  "$dmw" -s "$url" store init >/dev/null
  /usr/bin/time -f "push of $n machines to ${url%%://*}: %e s" \
    "$dmw" -s "$url" store push --from "$local_store" >/dev/null
  "$dmw" -s "$url" ls -q | wc -l
done
cold() { rm -rf "$HOME/.dmw/shared"; "$dmw" -s "$1" ls -q >/dev/null; }
for url in "$s3" "$etcd"; do
  start=$(date +%s.%N); cold "$url"; end=$(date +%s.%N)
  echo "cold ls -q (${url%%://*}, empty working copy): $(echo "$end - $start" | bc) s"
  "$dmw" -s "$url" ls -q >/dev/null
done
hyperfine -N --warmup 3 --runs 20 \
  "$dmw -s $local_store ls -q" \
  "$dmw -s $s3 ls -q" \
  "$dmw -s $etcd ls -q" \
  "$dmw -s $local_store ls" \
  "$dmw -s $s3 ls" \
  "$dmw -s $etcd ls" \
  "$dmw -s $local_store ip m1" \
  "$dmw -s $s3 ip m1" \
  "$dmw -s $etcd ip m1"
