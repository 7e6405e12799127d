#!/usr/bin/env bash
# Runs the README's shell examples, in order, against a fresh kvserver.
#
#     bash tests/readme/run.sh [--bin-dir DIR]
#
# Every ```bash, ```sh, ```shell and ```console block of README.md runs,
# unless the line right before it is `<!-- not run: REASON -->`; those are
# counted and their reasons printed. A ```console block is a transcript: its `$ ` lines
# (and their `\` continuation lines) run, and what each prints must be the
# lines the README shows after it (blank lines aside, remaining TTLs and
# absolute deadlines masked). The blocks run as one script, in a fresh directory
# under target/ (inside the workspace, so the README's `cargo run -p ...`
# lines work, and the files the examples write stay out of the tree),
# under `set -euo pipefail`, with `kvserver` and `kvctl` on the PATH (the
# release binaries, as `cargo install` would put them there) and `curl`
# failing on any HTTP error status (`--fail-with-body`), so an example that
# gets a 404 or 412 fails the run. kvserver listens on a free loopback port;
# the examples' `localhost:8080` and `127.0.0.1:8080` are rewritten to it
# and KVCTL_ENDPOINT points there, so a busy 8080 does not matter.
#
# Without --bin-dir it builds them (`cargo build --release -p kvserver -p
# kvctl`: about 4.5 minutes from nothing on 2 cores, seconds after .ci/run's
# attack step). The examples take about 15 s the first time (the README's
# `cargo run` lines build the examples package) and 2 s after; they are cut
# off after 120 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

bin_dir=""
if [[ "${1:-}" == "--bin-dir" ]]; then
    bin_dir=$(cd "$2" && pwd)
elif [[ $# -gt 0 ]]; then
    echo "usage: bash tests/readme/run.sh [--bin-dir DIR]" >&2
    exit 2
fi
if [[ -z "$bin_dir" ]]; then
    cargo build --release --quiet -p kvserver -p kvctl
    bin_dir="${CARGO_TARGET_DIR:-$repo/target}/release"
    [[ "$bin_dir" = /* ]] || bin_dir="$repo/$bin_dir"
fi
for tool in kvserver kvctl; do
    [[ -x "$bin_dir/$tool" ]] || { echo "no $tool in $bin_dir" >&2; exit 2; }
done

mkdir -p target
work=$(mktemp -d "$repo/target/readme.XXXXXX")
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# The examples, as one script. awk keeps the README's line numbers in it, so
# a failure says which example failed.
awk -v script="$work/examples.sh" -v skipped="$work/skipped.txt" '
    # A console command runs in the current shell (a brace group, so that
    # `export` and `cd` last); its output goes to a file and is compared with
    # the lines the README shows after it.
    function flush_command() {
        if (command == "") return
        printf "{ %s\n} >\"$readme_out\" 2>&1\nreadme_compare <<'"'"'README_EXPECTED'"'"'\n%sREADME_EXPECTED\n", command, expected > script
        command = ""; expected = ""
    }
    /^```/ && in_block {
        flush_command(); in_block = 0; next
    }
    in_block && kind == "console" {
        if (continued) { command = command "\n" $0 }
        else if (substr($0, 1, 2) == "$ ") {
            flush_command(); command = substr($0, 3)
        } else { expected = expected $0 "\n"; next }
        continued = ($0 ~ /\\$/)
        next
    }
    in_block { print > script; next }
    /^```(bash|sh|shell|console)[ \t]*$/ {
        if (reason != "") {
            printf "README.md:%d: %s\n", NR, reason > skipped
        } else {
            in_block = 1; kind = ($0 ~ /console/) ? "console" : "shell"; continued = 0
            printf "\necho \"== README.md:%d\"\nreadme_line=%d\n: >\"$readme_out\"\n", NR, NR > script
        }
        reason = ""; next
    }
    /^```/ { reason = ""; next }
    /^<!-- not run: .* -->$/ {
        reason = $0; sub(/^<!-- not run: /, "", reason); sub(/ -->$/, "", reason); next
    }
    /^[ \t]*$/ { next }
    { reason = "" }
    END { if (in_block) { print "README.md: unterminated code block" > "/dev/stderr"; exit 1 } }
' README.md
touch "$work/examples.sh" "$work/skipped.txt"

# A fresh server on a free port: port 0, and the address read from its log.
mkdir "$work/run"
"$bin_dir/kvserver" --addr 127.0.0.1:0 >"$work/server.log" 2>&1 &
server_pid=$!
addr=""
for _ in $(seq 1 100); do
    addr=$(sed -n 's|.*listening on http://\([0-9.:]*\).*|\1|p' "$work/server.log" | head -n 1)
    [[ -n "$addr" ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [[ -z "$addr" ]]; then
    echo "kvserver did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
fi
sed -i "s#localhost:8080#$addr#g; s#127\.0\.0\.1:8080#$addr#g" "$work/examples.sh"

blocks=$(grep -c '^readme_line=' "$work/examples.sh" || true)
echo "== README examples: $blocks blocks run against http://$addr"
cat > "$work/prelude.sh" <<'EOF'
set -eEuo pipefail
# Quiet progress meters, one line per answer, and an HTTP error fails.
curl() {
    command curl --silent --show-error --fail-with-body --write-out '\n' "$@" ||
        { local status=$?; echo "curl $* exited $status" >&2; return $status; }
}
trap 'cat "$readme_out" >&2; echo "FAIL: the README example in the block at README.md:$readme_line failed: $BASH_COMMAND" >&2' ERR
readme_line=0
readme_out=$(mktemp)
# What a console transcript shows against what the command printed, blank
# lines aside, with times that differ from run to run (remaining TTLs,
# absolute deadlines) masked.
readme_mask() {
    sed -E '/^[[:space:]]*$/d; s/expires in [0-9hmsd ]+/expires in T/g;
        s/"ttl_ms":[0-9]+/"ttl_ms":T/g; s/"expires_at":"[^"]*"/"expires_at":"T"/g'
}
readme_compare() {
    cat "$readme_out"
    if ! diff -u <(readme_mask) <(readme_mask <"$readme_out") >"$readme_out.diff"; then
        echo "FAIL: the output differs from the README's (README.md:$readme_line; - README, + actual):" >&2
        cat "$readme_out.diff" >&2
        return 1
    fi
}
EOF
status=0
(
    cd "$work/run"
    PATH="$bin_dir:$PATH" KVCTL_ENDPOINT="http://$addr" \
        timeout 120 bash -c "source '$work/prelude.sh'; source '$work/examples.sh'"
) || status=$?

skips=$(wc -l <"$work/skipped.txt")
echo "== $skips README blocks not run, as marked:"
sed 's/^/   /' "$work/skipped.txt"
if [[ $status -ne 0 ]]; then
    [[ $status -eq 124 ]] && echo "FAIL: the examples did not finish within 120 s" >&2
    echo "-- kvserver's log:" >&2
    tail -n 20 "$work/server.log" >&2
    exit 1
fi
echo "== README examples: all $blocks blocks passed"
