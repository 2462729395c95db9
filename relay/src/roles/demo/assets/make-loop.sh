#!/usr/bin/env bash
# Makes loop.ts, the clip `shoal demo` plays in a loop (built into the
# binary with include_bytes!). Run it from anywhere; needs ffmpeg with
# libx264. The output is committed: run this only to change the clip, then
# run `cargo test -p shoal-relay --lib demo`, whose tests check what the
# demo relies on. Single-threaded and bitexact, so ffmpeg 5.1.9 (Debian 12)
# remakes the committed file byte for byte; other versions may differ.
#
# What the demo relies on, and the flags that give it:
# - 4 s at 30 fps, 120 frames, one IDR every second (keyint=30,
#   min-keyint=30, scenecut=0), no B-frames (-bf 0), so the video's
#   timestamps step by exactly 3000 ticks of 90 kHz;
# - AAC at 32 kHz: 4 s is exactly 125 frames of 1024 samples; the encoder
#   adds one frame of priming, so 1024 samples are trimmed from the tone
#   (atrim) and the audio fills the loop to the sample, leaving no gap or
#   overlap where the loop starts again;
# - ffmpeg's MPEG-TS muxer sets the random_access_indicator on each IDR,
#   where shoal's chunker starts a keyframe chunk.
# testsrc2 draws its own clock and frame counter; the tone beeps for
# 100 ms at the start of every second.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

ffmpeg -nostdin -v error -y \
  -f lavfi -i testsrc2=size=640x360:rate=30 \
  -f lavfi -i 'aevalsrc=0.4*sin(2*PI*880*t)*lt(mod(t\,1)\,0.1):s=32000:c=mono' \
  -t 4 -af atrim=end_sample=126976 \
  -map 0:v -map 1:a \
  -c:v libx264 -preset medium -profile:v main -pix_fmt yuv420p \
  -b:v 1M -maxrate 1.5M -bufsize 2M -bf 0 \
  -x264-params keyint=30:min-keyint=30:scenecut=0 \
  -c:a aac -b:a 48k \
  -threads 1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
  -metadata service_provider=shoal -metadata service_name='shoal demo' \
  -f mpegts "$here/loop.ts"

ls -l "$here/loop.ts"
