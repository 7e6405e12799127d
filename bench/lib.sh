# Shared by the scripts in bench/ (sourced, not run). Before sourcing, a
# script sets bench_name (used in messages and the temporary folder's name).
#
# Sets: here (bench/), repo, lua (bench/lua), target_dir (CARGO_TARGET_DIR,
# default target/), kvserver and datagen (their release binaries), tmp (a
# temporary folder,
# removed at exit unless KEEP_TMP=1) and pids (every process the script
# starts goes in here; at exit each one still a child of the script is sent
# SIGTERM and waited for, and nothing else is touched).

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
lua="$here/lua"
target_dir=${CARGO_TARGET_DIR:-$repo/target}
[[ $target_dir == /* ]] || target_dir="$PWD/$target_dir"
kvserver="$target_dir/release/kvserver"
datagen="$target_dir/release/datagen"

pids=()
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvstore-$bench_name.XXXXXX")

# Whether PID is still a child of this script: a PID whose process ended
# can be reused by someone else's.
ours() {
    [[ -r /proc/$1/stat && $(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f2) == "$$" ]]
}

cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        if ours "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        echo "kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "$bench_name: $*" >&2
    exit 1
}

# Installs with apt-get whatever is missing: install_missing COMMAND[:PACKAGE]...
install_missing() {
    local wanted missing=()
    for wanted in "$@"; do
        command -v "${wanted%%:*}" >/dev/null || missing+=("${wanted#*:}")
    done
    if ((${#missing[@]})); then
        mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
        echo "installing ${missing[*]} with apt-get"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
}

# A TCP port nothing listens on, for servers that need a number up front.
free_port() {
    local port
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 40000))
        if [[ -z $(ss -Htln "sport = :$port") ]]; then
            echo "$port"
            return
        fi
    done
    fail "no free port found"
}

# Polls until `$@` succeeds, at most $1 tenths of a second.
wait_until() {
    local tenths=$1
    shift
    for _ in $(seq "$tenths"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

alive() {
    kill -0 "$1" 2>/dev/null
}

# CPU time (user + system, in clock ticks) the given processes have used.
cpu_ticks() {
    local pid total=0
    for pid in "$@"; do
        # Fields 14 and 15 of /proc/PID/stat, counted after the ")" that ends
        # the command name (which may hold spaces).
        total=$((total + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')))
    done
    echo "$total"
}

# CPU time of this shell's finished children (a client, once waited for).
children_ticks() {
    sed 's/.*) //' "/proc/$$/stat" | awk '{ print $14 + $15 }'
}

clock_hz=$(getconf CLK_TCK)

# CPU ticks per request, in microseconds: per_request TICKS REQUESTS.
per_request() { awk -v t="$1" -v hz="$clock_hz" -v n="$2" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }'; }

# Reads the RESULT line bench/lua/common.lua has wrk print into
# $tmp/wrk.out, failing (named WHAT) unless a request completed; then
# `wrk_field NAME` prints one of its fields (requests, rps, p99_ms, ...).
#   read_wrk_result WHAT
read_wrk_result() {
    wrk_result=$(grep '^RESULT ' "$tmp/wrk.out") || fail "$1: wrk printed no RESULT line"
    local requests
    requests=$(wrk_field requests)
    ((${requests:-0} > 0)) || fail "$1: no request completed"
}
wrk_field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$wrk_result"; }

# Builds kvserver in release mode into target_dir unless SKIP_BUILD=1.
build_kvserver() {
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        echo "building kvserver (release) into $target_dir"
        (cd "$repo" && CARGO_TARGET_DIR="$target_dir" cargo build --release -q -p kvserver)
    fi
    [[ -x $kvserver ]] || fail "no kvserver binary at $kvserver (build it, or unset SKIP_BUILD)"
}

# Builds bench/datagen in release mode into target_dir unless SKIP_BUILD=1.
build_datagen() {
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        echo "building bench/datagen (release) into $target_dir"
        CARGO_TARGET_DIR="$target_dir" cargo build --release -q --manifest-path "$here/datagen/Cargo.toml"
    fi
    [[ -x $datagen ]] || fail "no datagen binary at $datagen"
}

# Seconds since the epoch; `elapsed STARTED` prints the seconds since then.
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# Fills the Redis on 127.0.0.1:$redis_port with $keys keys, named by the
# printf format KEY_FORMAT over 0 .. keys-1, each holding $value_bytes copies
# of the character FILL, through redis-cli's pipe mode:
#   preload_redis KEY_FORMAT FILL
preload_redis() {
    local key_format=$1 fill=$2 started count
    started=$(now)
    awk -v keys="$keys" -v bytes="$value_bytes" -v format="$key_format" -v fill="$fill" 'BEGIN {
        value = sprintf("%*s", bytes, ""); gsub(/ /, fill, value)
        for (i = 0; i < keys; i++) {
            key = sprintf(format, i)
            printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(key), key, bytes, value
        }
    }' | redis-cli -h 127.0.0.1 -p "$redis_port" --pipe >"$tmp/redis-preload.out" ||
        { cat "$tmp/redis-preload.out" >&2; fail "preloading redis failed"; }
    count=$(redis-cli -h 127.0.0.1 -p "$redis_port" dbsize)
    ((count == keys)) || fail "preload: redis holds $count keys, expected $keys"
    echo "  redis: preloaded $count keys in $(elapsed "$started") s"
}

# Prints the commit the kvserver source comes from, noting uncommitted
# changes to it.
print_revision() {
    local revision
    if revision=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null); then
        git -C "$repo" diff --quiet HEAD -- crates Cargo.toml Cargo.lock || revision+=" with uncommitted changes"
        echo "kvserver source: commit $revision"
    fi
}

# The base URL a kvserver logged it listens on: kv_url_from LOGFILE.
kv_url_from() {
    grep -o 'listening on http://[0-9.:]*' "$1" | head -1 | sed 's/listening on //'
}
