#!/usr/bin/env bash
# Fuzzes the segmenter for a bounded time (not part of CI). Needs nightly and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
# Usage: segmenter/fuzz/run.sh [SECONDS_PER_TARGET] (default 60)
# Seeds the decode corpus with small files made by ffmpeg when it is available.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
corpus=corpus/decode
mkdir -p "$corpus"
if command -v ffmpeg >/dev/null && [ -z "$(ls -A "$corpus")" ]; then
  for spec in "wav pcm_s16le" "flac flac" "mp3 libmp3lame" "ogg libvorbis" "m4a aac" "aiff pcm_s16be"; do
    set -- $spec
    ffmpeg -v error -y -f lavfi -i "sine=frequency=440:sample_rate=22050:duration=0.3" -c:a "$2" "$corpus/seed.$1"
  done
fi
for target in decode restamp; do
  cargo +nightly fuzz run "$target" -- -max_total_time="$secs" -rss_limit_mb=512 -timeout=10
done
