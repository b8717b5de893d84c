#!/usr/bin/env bash
# Documented check (not run in CI): render a readiness report's HTML in headless Chromium and save a
# screenshot, to see that the embedded plots and audio players of the validate stage show up.
#
#   sudo apt-get install -y chromium          # Debian's package (Ubuntu: chromium-browser snap won't do headless here)
#   bash scripts/screenshot_report.sh reports/readiness-<run_id>.html [out.png] [width] [height]
#
# Then open out.png: the metrics table, mel spectrograms, pitch contours and one audio player per
# synthesized/reference clip should be visible. Chromium runs offline (no background networking, no
# component updates) with a throwaway profile directory. Exit 0 with the PNG written, non-zero otherwise.
set -euo pipefail

html="${1:?usage: screenshot_report.sh REPORT.html [OUT.png] [WIDTH] [HEIGHT]}"
out="${2:-${html%.html}.png}"
width="${3:-1280}"
height="${4:-6000}"

[ -f "$html" ] || { echo "screenshot_report: no such file: $html" >&2; exit 3; }
browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then browser="$(command -v "$b")"; break; fi
done
[ -n "$browser" ] || { echo "screenshot_report: chromium not installed (apt-get install chromium)" >&2; exit 2; }

profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
abs_html="$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"
abs_out="$(cd "$(dirname "$out")" 2>/dev/null && pwd || pwd)/$(basename "$out")"

"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --no-first-run --user-data-dir="$profile" \
  --hide-scrollbars --window-size="${width},${height}" --screenshot="$abs_out" \
  "file://$abs_html" >/dev/null 2>&1 || true

if [ -s "$abs_out" ]; then
  echo "screenshot_report: wrote $abs_out"
  # the report embeds audio players; count them as a quick textual check alongside the picture
  echo "screenshot_report: <audio> elements: $(grep -o '<audio' "$html" | wc -l), <img> elements: $(grep -o '<img' "$html" | wc -l)"
else
  echo "screenshot_report: chromium wrote no screenshot" >&2
  exit 4
fi
