#!/usr/bin/env bash
# Checks every committed Cargo.lock (the workspace's and bench/datagen's)
# against the RustSec advisory database, offline: the snapshot in
# ../shared/advisory-db next to the checkout (SNAPSHOT says which commit).
# Any advisory that applies fails the run: vulnerabilities, and with
# `--deny warnings` the unmaintained and unsound notices too. Yanked crates
# are not checked: that needs the crates.io index, not the snapshot.
#
# cargo-audit is installed by this script into a cache directory and reused
# from there on the next run: about 4.5 minutes to build on a 2-core
# machine, then under a second per run.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

# Pinned: a newer cargo-audit may read the database differently.
version=0.22.2
db="${KV_ADVISORY_DB:-$repo/../shared/advisory-db}"
tools="${KV_CI_TOOLS:-${CARGO_TARGET_DIR:-$repo/target}/ci-tools}"

if [[ ! -d "$db/crates" ]]; then
    echo "error: no RustSec advisory database at $db (expected next to the checkout, as ../shared/advisory-db; or set KV_ADVISORY_DB)" >&2
    exit 1
fi
echo "advisory database: $db ($(head -n 1 "$db/SNAPSHOT" 2>/dev/null || echo 'no SNAPSHOT file'))"

audit="$tools/bin/cargo-audit"
if [[ "$("$audit" --version 2>/dev/null)" != "cargo-audit $version" ]]; then
    echo "installing cargo-audit $version into $tools"
    started=$SECONDS
    cargo install --quiet --locked --root "$tools" cargo-audit --version "$version"
    echo "installed in $((SECONDS - started)) s"
fi

status=0
while IFS= read -r lock; do
    echo "-- $lock"
    "$audit" audit --no-fetch --db "$db" --no-yanked --deny warnings --file "$lock" || status=1
done < <(git ls-files -- 'Cargo.lock' '*/Cargo.lock')
exit "$status"
