#!/usr/bin/env bash
# Proves the Dockerfile on a machine whose Docker reaches no registry:
#
#   1. installs docker.io (Debian) when dockerd is missing, and starts dockerd
#      when none is running (no bridge, no iptables: see "Networking" below);
#   2. builds local stand-ins for missing base images (base-images.sh);
#   3. vendors the crates into the build context (vendor/, removed afterwards)
#      and builds the image with no network at all;
#   4. runs it and checks: the image's settings, the secure default (no auth
#      on 0.0.0.0 refuses to start), the seed's commands, bearer-token auth,
#      the health check, and data surviving a restart, a kill -9 and a new
#      container on the same volume;
#   5. removes its containers, volume and vendor/, and stops the dockerd it
#      started. Images stay, as the cache for the next run.
#
# Networking: every container runs with --network none, so kvserver listens
# on 0.0.0.0:8080 exactly as the image says but inside its own network
# namespace, where only its loopback exists. The checks run curl inside that
# namespace (nsenter) against 127.0.0.1:8080: nothing is published on the
# machine, no port can clash with another server, and no traffic leaves
# loopback. `docker run -p` itself is therefore not exercised here.
#
# Usage, as root from anywhere: bash tests/docker/smoke.sh
# It ends with "N passed, N failed" and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DOCKER_BUILDKIT=0 # the classic builder: Debian's docker.io has no buildx

image=kvstore
run_id="kvsmoke-$$"
work=$(mktemp -d "${TMPDIR:-/tmp}/$run_id.XXXXXX")
containers=()
volume=""
dockerd_pid=""
made_vendor=""
passed=0
failed=0
started=$SECONDS
phase_started=$SECONDS
timings=()

phase() {
    if [ -n "${phase_name:-}" ]; then
        timings+=("$(printf '%-34s %4ds' "$phase_name" $((SECONDS - phase_started)))")
    fi
    phase_name=$1
    phase_started=$SECONDS
    echo "== $1"
}

# Removes what this run made and stops the dockerd it started; runs at the
# end, and on any early exit. Safe to call twice.
cleanup() {
    # -v: also the anonymous /data volume each container gets from VOLUME.
    for c in "${containers[@]}"; do docker rm -fv "$c" >/dev/null 2>&1 || true; done
    containers=()
    [ -z "$volume" ] || docker volume rm -f "$volume" >/dev/null 2>&1 || true
    volume=""
    [ -z "$made_vendor" ] || rm -rf vendor
    made_vendor=""
    rm -rf "$work"
    if [ -n "$dockerd_pid" ]; then
        kill "$dockerd_pid" 2>/dev/null || true
        for _ in $(seq 30); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 1; done
        echo "stopped dockerd (pid $dockerd_pid)"
        dockerd_pid=""
    fi
}
trap 'status=$?; cleanup; exit $status' EXIT
trap 'exit 130' INT TERM

ok() {
    echo "ok: $1"
    passed=$((passed + 1))
}
not_ok() {
    echo "FAIL: $1"
    failed=$((failed + 1))
}

# ---- 1. Docker ---------------------------------------------------------------
phase "docker: install and start"
if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
    if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends docker.io; } >"$work/apt.log" 2>&1; then
        tail -n 20 "$work/apt.log"
        echo "smoke: installing docker.io failed" >&2
        exit 1
    fi
    echo "installed $(dpkg-query -W -f '${Package} ${Version}' docker.io)"
fi
for tool in curl nsenter cargo; do
    command -v "$tool" >/dev/null || {
        echo "smoke: $tool is needed" >&2
        exit 1
    }
done
if docker info >/dev/null 2>&1; then
    echo "using the Docker daemon that is already running"
else
    # No default bridge and no iptables rules: the containers need neither
    # (see "Networking" above), and the machine's firewall stays untouched.
    dockerd --bridge=none --iptables=false >"$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    if ! docker info >/dev/null 2>&1; then
        tail -n 30 "$work/dockerd.log"
        echo "smoke: dockerd did not come up" >&2
        exit 1
    fi
    echo "started dockerd (pid $dockerd_pid)"
fi

# ---- 2. base images ----------------------------------------------------------
phase "base images (stand-ins if missing)"
bash tests/docker/base-images.sh

# ---- 3. the image ------------------------------------------------------------
phase "cargo vendor"
if [ -e vendor ] && [ ! -e vendor/.kv-smoke ]; then
    echo "smoke: vendor/ exists and was not made by this script; move it away" >&2
    exit 1
fi
made_vendor=yes
cargo vendor --locked --quiet vendor >/dev/null
touch vendor/.kv-smoke
du -sh vendor | awk '{print "vendored crates: " $1}'

phase "docker build (release, offline)"
if ! docker build --force-rm --network none -t "$image" . >"$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log"
    echo "smoke: docker build failed" >&2
    exit 1
fi
grep -E 'Sending build context|Finished' "$work/build.log" | sed 's/\x1b\[[0-9;]*m//g'
# Tag the build stage (the image made just before the second FROM) as
# kvstore:build: it stays as the next run's cache, while older builds, left
# untagged, are pruned (1-2 GB each). If the log can't be read, prune nothing.
build_stage=$(awk '/^Step [0-9]+\/[0-9]+ : FROM /{ if (++n == 2) { print id; exit } }
    / ---> [0-9a-f]+$/{ id = $NF }' "$work/build.log")
if [ -n "$build_stage" ] && docker tag "$build_stage" "$image:build"; then
    for title in kvstore-build kvstore; do
        docker image prune -f --filter "label=org.opencontainers.image.title=$title" >/dev/null
    done
fi
rm -rf vendor
made_vendor=""

# ---- 4. checks ---------------------------------------------------------------
# start NAME DOCKER_RUN_ARGS...: runs the image detached with no network as
# $ctr, the container the helpers below talk to; remembered for cleanup.
start() {
    ctr="$run_id-$1"
    shift
    containers+=("$ctr")
    docker run -d --network none --name "$ctr" "$@" "$image" >/dev/null
}

# curl inside the network namespace of container $ctr, on its loopback;
# $base is the server's URL there and $tls_args what curl needs for its TLS.
base=http://127.0.0.1:8080
tls_args=()
kvcurl() {
    local pid
    pid=$(docker inspect -f '{{.State.Pid}}' "$ctr")
    nsenter --target "$pid" --net curl -sS --max-time 5 "${tls_args[@]}" "$@"
}

# expect WHAT STATUS BODY_PART CURL_ARGS...: one request, one check.
expect() {
    local what=$1 want=$2 part=$3 got
    shift 3
    got=$(kvcurl -o "$work/body" -D "$work/headers" -w '%{http_code}' "$@" 2>"$work/curl.err") ||
        got="no answer ($(cat "$work/curl.err"))"
    if [ "$got" = "$want" ] && grep -qiF -- "$part" "$work/body" "$work/headers"; then
        ok "$what ($got)"
    else
        not_ok "$what: wanted $want with '$part', got $got: $(head -c 300 "$work/body" 2>/dev/null)"
    fi
}

# Waits for /readyz on container $ctr; fails with its log if it stops.
wait_ready() {
    local status
    for _ in $(seq 120); do
        if [ "$(docker inspect -f '{{.State.Running}}' "$ctr")" != true ]; then
            docker logs "$ctr" 2>&1 | tail -n 20
            not_ok "$ctr stopped before it was ready"
            return 1
        fi
        status=$(kvcurl -o /dev/null -w '%{http_code}' "$base/readyz" 2>/dev/null) || true
        [ "$status" = 200 ] && return 0
        sleep 0.5
    done
    not_ok "$ctr not ready after 60 s"
    return 1
}

wait_healthy() {
    local health
    for _ in $(seq 60); do
        health=$(docker inspect -f '{{.State.Health.Status}}' "$ctr")
        [ "$health" = healthy ] && break
        sleep 1
    done
    if [ "$health" = healthy ]; then ok "the HEALTHCHECK reports healthy"; else not_ok "health is $health"; fi
}

json=(-H "Content-Type: application/json")

phase "checks: image"
size=$(docker image inspect -f '{{.Size}}' "$image")
echo "image size: $((size / 1000000)) MB"
[ "$size" -lt 150000000 ] && ok "the image is small ($((size / 1000000)) MB)" || not_ok "the image is $((size / 1000000)) MB"
[ "$(docker image inspect -f '{{.Config.User}}' "$image")" = 10001:10001 ] &&
    ok "runs as uid 10001" || not_ok "user is $(docker image inspect -f '{{.Config.User}}' "$image")"
env=$(docker image inspect -f '{{join .Config.Env " "}}' "$image")
[[ " $env " == *" KV_ADDR=0.0.0.0:8080 "* && " $env " == *" KV_DATA_DIR=/data "* ]] &&
    ok "KV_ADDR=0.0.0.0:8080 and KV_DATA_DIR=/data" || not_ok "env is $env"
[ "$(docker image inspect -f '{{json .Config.Volumes}}' "$image")" = '{"/data":{}}' ] &&
    ok "/data is a volume" || not_ok "volumes: $(docker image inspect -f '{{json .Config.Volumes}}' "$image")"

phase "checks: secure default"
start refuse
code=$(timeout 30 docker wait "$ctr" || echo "still running")
log=$(docker logs "$ctr" 2>&1)
if [ "$code" != 0 ] && [ "$code" != "still running" ] &&
    [[ $log == *--auth-file* && $log == *--allow-unauthenticated* ]]; then
    ok "no auth on 0.0.0.0 refuses to start, naming --auth-file and --allow-unauthenticated (exit $code)"
else
    not_ok "no auth on 0.0.0.0: exit '$code', log: $(tail -n 3 <<<"$log")"
fi

phase "checks: quick try, unauthenticated"
start open -e KV_ALLOW_UNAUTHENTICATED=true
if wait_ready; then
    # The seed's commands, word for word but for the address.
    expect "seed POST creates" 201 '"value":"PhysicsX"' -X POST $base/store -d '{"key":"P", "value":"PhysicsX"}' "${json[@]}"
    expect "seed GET reads" 200 '"value":"PhysicsX"' "$base/store?key=P"
    expect "seed PUT updates" 200 '"value":"PhysicsXKeyValueStore"' -X PUT $base/store -d '{"key":"P", "value":"PhysicsXKeyValueStore"}' "${json[@]}"
    expect "seed DELETE deletes" 200 '"deleted":true' -X DELETE "$base/store?key=P"
    expect "GET after DELETE" 404 not_found "$base/store?key=P"
    expect "seed POST with a ttl" 201 '"ttl_ms"' -X POST $base/store -d '{"key":"session", "value":"PhysicsX", "ttl":0.3}' "${json[@]}"
    sleep 0.5
    expect "the ttl key is gone after its ttl" 404 not_found "$base/store?key=session"
    expect "/v1 PUT" 201 '"created":true' -X PUT --data-binary 'bytes' $base/v1/kv/users/42
    expect "/v1 GET" 200 bytes $base/v1/kv/users/42
    wait_healthy
fi
docker stop -t 20 "$ctr" >/dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$ctr")
[ "$code" = 0 ] && ok "docker stop shuts down cleanly (exit 0)" || not_ok "docker stop: exit $code"

phase "checks: auth and the volume"
# Tokens made by the image itself: line 1 the token, line 2 its auth-file line.
token_create() {
    docker run --rm --network none "$image" token create "$@" 2>>"$work/token.err"
}
if token_create --name app --allow write:app/ --allow read: >"$work/app.out" &&
    token_create --name reader --allow read: >"$work/reader.out" &&
    [ "$(wc -l <"$work/app.out")" = 2 ]; then
    ok "token create prints a token and an auth-file line"
else
    not_ok "token create: $(cat "$work/app.out" "$work/token.err")"
fi
app=$(sed -n 1p "$work/app.out")
reader=$(sed -n 1p "$work/reader.out")
auth="$work/auth"
{ sed -n 2p "$work/app.out"; sed -n 2p "$work/reader.out"; } >"$auth"
# Readable by the container's user only: the README's recipe.
chown 10001:10001 "$auth"
chmod 600 "$auth"
volume="$run_id-data"
docker volume create "$volume" >/dev/null
with_auth=(-v "$volume:/data" -v "$auth:/run/secrets/kv-auth:ro" -e KV_AUTH_FILE=/run/secrets/kv-auth)
# Tokens over plain HTTP on 0.0.0.0 need the explicit opt-in, as in the README.
insecure=(-e KV_ALLOW_INSECURE_TOKENS=true)

cp -p "$auth" "$work/auth-640"
chmod 640 "$work/auth-640"
start loose -v "$work/auth-640:/run/secrets/kv-auth:ro" -e KV_AUTH_FILE=/run/secrets/kv-auth -e KV_ALLOW_INSECURE_TOKENS=true
code=$(timeout 30 docker wait "$ctr" || echo "still running")
[ "$code" != 0 ] && [ "$code" != "still running" ] &&
    ok "a group-readable auth file is refused (exit $code)" || not_ok "a group-readable auth file: exit '$code'"

bearer=(-H "Authorization: Bearer $app")
start auth "${with_auth[@]}" "${insecure[@]}"
if wait_ready; then
    expect "/healthz needs no token" 200 "" $base/healthz
    expect "no token is 401" 401 "WWW-Authenticate: Bearer" "$base/store?key=app/P"
    expect "an unknown token is 401" 401 unauthorized -H "Authorization: Bearer not-a-token" "$base/store?key=app/P"
    expect "a read-only token cannot write: 403" 403 forbidden -H "Authorization: Bearer $reader" -X POST $base/store -d '{"key":"app/P", "value":"PhysicsX"}' "${json[@]}"
    expect "write:app/ cannot write outside app/: 403" 403 forbidden "${bearer[@]}" -X POST $base/store -d '{"key":"P", "value":"PhysicsX"}' "${json[@]}"
    expect "seed POST with a token" 201 '"value":"PhysicsX"' "${bearer[@]}" -X POST $base/store -d '{"key":"app/P", "value":"PhysicsX"}' "${json[@]}"
    expect "seed GET with a token" 200 '"value":"PhysicsX"' "${bearer[@]}" "$base/store?key=app/P"
    expect "seed PUT with a token" 200 '"value":"PhysicsXKeyValueStore"' "${bearer[@]}" -X PUT $base/store -d '{"key":"app/P", "value":"PhysicsXKeyValueStore"}' "${json[@]}"
    expect "seed DELETE with a token" 200 '"deleted":true' "${bearer[@]}" -X DELETE "$base/store?key=app/P"
    expect "write a key to keep" 201 '"value":"before restart"' "${bearer[@]}" -X POST $base/store -d '{"key":"app/kept", "value":"before restart"}' "${json[@]}"
    expect "write a key with a long ttl" 201 '"created":true' "${bearer[@]}" -X PUT --data-binary 'with ttl' "$base/v1/kv/app/ttl?ttl=1h"
    expect "the reader reads it" 200 'before restart' -H "Authorization: Bearer $reader" "$base/store?key=app/kept"
    wait_healthy
fi

docker restart -t 20 "$ctr" >/dev/null
if wait_ready; then
    expect "a key survives docker restart" 200 'before restart' "${bearer[@]}" "$base/store?key=app/kept"
    expect "write after the restart" 201 '"created":true' "${bearer[@]}" -X PUT --data-binary 'before kill' "$base/v1/kv/app/last"
fi

# kill -9, then a brand-new container on the same volume.
docker kill "$ctr" >/dev/null
start auth2 "${with_auth[@]}" "${insecure[@]}"
if wait_ready; then
    expect "a key survives kill -9 and a new container" 200 'before restart' "${bearer[@]}" "$base/store?key=app/kept"
    expect "the last acknowledged write survives kill -9" 200 'before kill' "${bearer[@]}" "$base/v1/kv/app/last"
    expect "a ttl survives, still counting down" 200 'Kv-Ttl-Ms' "${bearer[@]}" "$base/v1/kv/app/ttl"
    expect "the deleted key stays deleted" 404 not_found "${bearer[@]}" "$base/store?key=app/P"
fi

phase "checks: TLS"
docker stop -t 20 "$ctr" >/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
    -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
chown 10001:10001 "$work/tls.key" "$work/tls.crt"
chmod 600 "$work/tls.key"
start tls "${with_auth[@]}" \
    -v "$work/tls.crt:/run/secrets/tls.crt:ro" -e KV_TLS_CERT=/run/secrets/tls.crt \
    -v "$work/tls.key:/run/secrets/tls.key:ro" -e KV_TLS_KEY=/run/secrets/tls.key
base=https://127.0.0.1:8080
tls_args=(--cacert "$work/tls.crt")
if wait_ready; then
    expect "/healthz over https" 200 "" $base/healthz
    expect "the volume's data over https" 200 'before restart' "${bearer[@]}" "$base/store?key=app/kept"
    wait_healthy
fi

# ---- 5. clean up, then the summary ------------------------------------------------
phase "cleanup"
cleanup
phase "done"
echo "-- phase timings"
printf '%s\n' "${timings[@]}"
echo "total $((SECONDS - started)) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
