#!/usr/bin/env bash
# Command latency of the release `dmw` against a real provisioned machine: `env`, `ip`,
# and `ls` over 30 machines (clones of one real machine's record, so all 30 queries hit a
# real engine over mutual TLS). Needs root (it boots a testbed host). Figures: BENCHMARKS.md.
#   benches/cli.sh            # prints hyperfine's table
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
cargo build --release -q -p dmw -p dmw-testbed
dmw="$PWD/target/release/dmw"
work=$(mktemp -d)
store="$work/store"
trap 'kill "$tb" 2>/dev/null; wait "$tb" 2>/dev/null; rm -rf "$work"' EXIT

target/release/testbed up 1 --docker > "$work/hosts" 2>"$work/testbed.log" & tb=$!
for _ in $(seq 300); do [ -s "$work/hosts" ] && break; sleep 1; done
read -r _ addr port key < "$work/hosts"
"$dmw" -s "$store" create --driver generic --generic-ip-address "$addr" --generic-ssh-port "$port" \
  --generic-ssh-key "$key" --engine-install-method distro m1 > "$work/create.log"
for i in $(seq 2 30); do
  cp -a "$store/machines/m1" "$store/machines/m$i"
  sed -i "s/\"name\": \"m1\"/\"name\": \"m$i\"/" "$store/machines/m$i/config.json"
done
"$dmw" -s "$store" ls | head -3
hyperfine -N --warmup 10 --runs 100 \
  "$dmw -s $store ip m1" \
  "$dmw -s $store env --shell bash m1" \
  "$dmw -s $store ls" \
  "$dmw -s $store ls --filter state=Running --format '{{.Name}} {{.URL}}'"
