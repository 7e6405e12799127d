#!/usr/bin/env bash
# Builds local stand-ins for the base images the Dockerfile names, for a
# machine whose Docker can reach no registry (smoke.sh calls it):
#
#   debian:bookworm-slim  a minimal bookworm root file system made with
#                         debootstrap from Debian's mirror, trimmed like the
#                         official slim image, then `docker import`ed;
#   rust:1-bookworm       that image plus gcc and libc6-dev (for linking) and
#                         this machine's Rust toolchain, the one `rustc` runs.
#
# An image that already exists, stand-in or real, is left alone; remove it
# (`docker rmi rust:1-bookworm`) to rebuild it. Both carry a label saying they
# are stand-ins. Needs root and a running Docker daemon.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export DOCKER_BUILDKIT=0 # the classic builder: Debian's docker.io has no buildx

slim=debian:bookworm-slim
rust=rust:1-bookworm
label='org.opencontainers.image.description="local stand-in made by tests/docker/base-images.sh"'

have() { docker image inspect "$1" >/dev/null 2>&1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kv-base-images.XXXXXX")
trap 'rm -rf "$work"' EXIT

if ! have "$slim"; then
    echo "base-images: $slim is missing: debootstrap bookworm and import it"
    if ! command -v debootstrap >/dev/null; then
        if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends debootstrap; } >"$work/apt.log" 2>&1; then
            tail -n 20 "$work/apt.log"
            echo "base-images: installing debootstrap failed" >&2
            exit 1
        fi
    fi
    rootfs="$work/rootfs"
    if ! debootstrap --variant=minbase bookworm "$rootfs" >"$work/debootstrap.log" 2>&1; then
        tail -n 30 "$work/debootstrap.log"
        echo "base-images: debootstrap failed" >&2
        exit 1
    fi
    # Trim what the official slim image leaves out, and keep later package
    # installs from bringing it back (the same dpkg and apt settings).
    (
        cd "$rootfs"
        rm -rf var/lib/apt/lists/* var/cache/apt/*.bin var/cache/apt/archives/*.deb \
            usr/share/doc/* usr/share/man/* usr/share/info/* usr/share/locale/* \
            var/log/*.log var/log/apt/* etc/hostname etc/resolv.conf dev/*
        cat >etc/dpkg/dpkg.cfg.d/docker-slim <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
        cat >etc/apt/apt.conf.d/docker-clean <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Install-Recommends "false";
EOF
    )
    tar --numeric-owner -C "$rootfs" -c . |
        docker import --change 'CMD ["bash"]' --change "LABEL $label" - "$slim" >/dev/null
    rm -rf "$rootfs"
fi

if ! have "$rust"; then
    echo "base-images: $rust is missing: build it from $slim and this machine's Rust toolchain"
    sysroot=$(rustc --print sysroot)
    if [ ! -x "$sysroot/bin/cargo" ] || [ ! -d "$sysroot/lib/rustlib" ]; then
        echo "base-images: $sysroot is not a rustup toolchain (no bin/cargo or lib/rustlib)" >&2
        exit 1
    fi
    echo "base-images: toolchain $sysroot ($(rustc --version))"
    context="$work/rust"
    mkdir -p "$context/toolchain/bin" "$context/toolchain/lib"
    # Compiler, cargo, the standard library and the linker shims; no docs.
    # Hard links when /tmp shares the file system, copies otherwise.
    for item in bin/cargo bin/rustc bin/rustdoc lib/rustlib; do
        cp -al "$sysroot/$item" "$context/toolchain/$item" 2>/dev/null ||
            cp -a "$sysroot/$item" "$context/toolchain/$item"
    done
    for lib in "$sysroot"/lib/*.so*; do
        cp -al "$lib" "$context/toolchain/lib/" 2>/dev/null || cp -a "$lib" "$context/toolchain/lib/"
    done
    rm -rf "$context/toolchain/lib/rustlib/"*/share "$context/toolchain/lib/rustlib/src"
    cp "$here/rust.Dockerfile" "$context/Dockerfile"
    # The only build step that needs the network: apt fetching gcc.
    if ! docker build --force-rm --network host -t "$rust" "$context" >"$work/rust-build.log" 2>&1; then
        tail -n 30 "$work/rust-build.log"
        echo "base-images: building $rust failed" >&2
        exit 1
    fi
fi

docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' "$slim"
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' "$rust"
