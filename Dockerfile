# syntax=docker/dockerfile:1
# bardcast image: the release binary plus the player (with the pinned hls.js) on a slim,
# non-root runtime.
#   docker build -t bardcast .
#   docker run -p 3000:3000 -v /path/to/music:/music:ro -v bardcast-data:/data bardcast
# The RUN lines are the README's own build commands, so a build here and a build from a
# clone give the same binary and the same player files.

# --- server: cargo build --release --locked -----------------------------------------------
FROM rust:1-bookworm AS server
WORKDIR /src
# rust-toolchain.toml stays out on purpose: it names "stable", which would make rustup fetch
# a second toolchain instead of using the image's (the MSRV in Cargo.toml still applies).
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY benches benches
COPY segmenter segmenter
COPY src src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && cp target/release/bardcast /usr/local/bin/bardcast

# --- player: player/install.sh (npm ci from the lockfile, checks hls.js against vendor.lock) -
FROM node:20-bookworm-slim AS player
WORKDIR /app/player
# The lockfiles first, so a change to the player's own files does not re-run npm ci.
COPY player/package.json player/package-lock.json player/vendor.lock player/install.sh ./
RUN ./install.sh
COPY player/ ./
# Only what the browser loads is shipped: no npm packages, tests or dev tools.
RUN rm -rf node_modules test e2e tools

# --- runtime ----------------------------------------------------------------------------
FROM debian:bookworm-slim
# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can check it (k8s/ uses 10001 too).
RUN groupadd --system --gid 10001 bardcast \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin bardcast \
    && mkdir -p /data /music \
    && chown 10001:10001 /data
COPY --from=server /usr/local/bin/bardcast /usr/local/bin/bardcast
COPY --from=player /app/player /app/player
WORKDIR /app
ENV HOST=0.0.0.0 \
    PORT=3000 \
    MUSIC_DIR=/music \
    DATABASE_PATH=/data/bardcast.db \
    CACHE_DIR=/data/cache \
    PLAYER_DIR=/app/player
# /music is mounted read-only by the user; /data holds the database and the segment cache.
VOLUME ["/data"]
USER 10001:10001
EXPOSE 3000
# No curl in the runtime: bash's /dev/tcp asks /api/health and wants a 200 (503 = database
# down). Kubernetes uses its own httpGet probes instead (k8s/deployment.yaml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/\"${PORT:-3000}\" && printf 'GET /api/health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/bardcast"]
