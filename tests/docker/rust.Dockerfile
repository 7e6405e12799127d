# A local stand-in for rust:1-bookworm, built by base-images.sh where no
# registry can be reached: the local debian:bookworm-slim stand-in, a C
# toolchain for linking, and this machine's Rust toolchain (the context).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rustup/toolchains/local
# The same variables and PATH as the official image, without rustup itself.
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/rustup/toolchains/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL org.opencontainers.image.description="local stand-in for rust:1-bookworm, made by kvstore's tests/docker/base-images.sh"
CMD ["bash"]
