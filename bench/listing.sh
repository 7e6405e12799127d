#!/usr/bin/env bash
# Ordered listing, old against new, in the same run: builds kvcore's
# `listing` bench (crates/kvcore/benches/listing.rs, see its header for the
# figures) twice in release mode, once in this checkout and once in a copy
# of BASE (git archive) with the same bench file added, then runs the two
# binaries in alternation, ROUNDS times each, and prints every figure's
# median per side and the median of the per-round ratios new/old.
# Results: BENCHMARKS.md, "Ordered listing".
#
#   bench/listing.sh                              # 1M keys, 3 rounds
#   KEYS=100000 ROUNDS=5 bench/listing.sh
#   BASE=e9f3328 KEYS=10000000 ROUNDS=1 bench/listing.sh
#
# Environment (default):
#   BASE (e9f3328)      the commit to compare with (before the ordered index)
#   KEYS (1000000)      keys in the store
#   ROUNDS (3)          runs of each binary, alternating old, new, old, ...
#   CARGO_TARGET_DIR    where cargo builds (default: target/); both builds
#                       share it, so the dependencies are built once
#   KEEP_TMP (0)        1: keep the temporary folder (the raw outputs)

bench_name=listing.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

base=${BASE:-e9f3328}
keys=${KEYS:-1000000}
rounds=${ROUNDS:-3}
export CARGO_TARGET_DIR=$target_dir

# The path of the bench binary cargo builds in the workspace at $1. Both
# builds share the target folder, and when the two sides' kvcore come out as
# the same unit (same dependencies), cargo would take the binary last built
# for the other side as up to date: touching the crate's sources first makes
# it rebuild from these ones.
build_bench() {
    find "$1/crates/kvcore/src" -name '*.rs' -exec touch {} +
    (cd "$1" && cargo bench -p kvcore --bench listing --no-run --message-format=json 2>/dev/null) |
        grep '"executable":"[^"]*listing' | sed 's/.*"executable":"\([^"]*\)".*/\1/' | tail -1
}

mkdir "$tmp/base"
git -C "$repo" archive "$base" | tar -x -C "$tmp/base"
cp "$repo/crates/kvcore/benches/listing.rs" "$tmp/base/crates/kvcore/benches/"
grep -q 'name = "listing"' "$tmp/base/crates/kvcore/Cargo.toml" ||
    printf '\n[[bench]]\nname = "listing"\nharness = false\n' >>"$tmp/base/crates/kvcore/Cargo.toml"
echo "building the bench at $base and in $repo (release)"
old=$(build_bench "$tmp/base")
[[ -x $old ]] || fail "building the bench at $base failed"
cp "$old" "$tmp/old"
new=$(build_bench "$repo")
[[ -x $new ]] || fail "building the bench in $repo failed"
cp "$new" "$tmp/new"

for round in $(seq "$rounds"); do
    for side in old new; do
        echo "round $round: $side"
        KVCORE_LIST_KEYS=$keys "$tmp/$side" --bench >"$tmp/$side.$round"
    done
done

# One row per figure: median old, median new, median of the rounds' new/old.
python3 - "$tmp" "$rounds" <<'EOF'
import statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
def read(path):
    return {k: float(v) for k, v in (line.split() for line in open(path))}
old = [read(f"{tmp}/old.{r}") for r in range(1, rounds + 1)]
new = [read(f"{tmp}/new.{r}") for r in range(1, rounds + 1)]
print(f"\n{int(old[0]['keys'])} keys, {rounds} rounds\n")
print("| figure | old (median) | new (median) | new/old (median of rounds) |")
print("|---|---:|---:|---:|")
for name in old[0]:
    if name == "keys":
        continue
    o = statistics.median(run[name] for run in old)
    n = statistics.median(run[name] for run in new)
    ratio = statistics.median(b[name] / a[name] for a, b in zip(old, new) if a[name])
    print(f"| {name} | {o:.2f} | {n:.2f} | {ratio:.3f} |")
EOF
