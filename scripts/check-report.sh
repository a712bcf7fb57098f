#!/usr/bin/env bash
# Renders a report page in headless Chromium and checks the screenshot is not blank.
#
# Usage: scripts/check-report.sh REPORT.html OUT.png
# Exit: 0 the screenshot exists and shows content; 1 missing or blank screenshot, or Chromium failed;
#       2 usage error or Chromium not installed (Debian: apt-get install -y chromium).
# The browser runs with networking extras off, so a page that needed the network would show gaps.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 REPORT.html OUT.png" >&2
  exit 2
fi
report=$1
out=$2
if [[ ! -f "$report" ]]; then
  echo "check-report: no such file: $report" >&2
  exit 2
fi
browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z "$browser" ]]; then
  echo "check-report: chromium not found; install it with: apt-get update && apt-get install -y chromium" >&2
  exit 2
fi

repo_root=$(cd "$(dirname "$0")/.." && pwd)
report_abs=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
mkdir -p "$(dirname "$out")"
out_abs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
rm -f "$out_abs"

"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
  --disable-sync --no-first-run --hide-scrollbars --user-data-dir="$profile" \
  --screenshot="$out_abs" --window-size=1400,2000 "file://$report_abs" >"$profile/chromium.log" 2>&1 || {
  echo "check-report: chromium failed:" >&2
  tail -n 20 "$profile/chromium.log" >&2
  exit 1
}

if [[ ! -s "$out_abs" ]]; then
  echo "check-report: no screenshot was written to $out" >&2
  exit 1
fi

# Blank = almost every pixel has the colour of the top-left corner, or hardly any distinct colours.
cd "$repo_root"
node --input-type=module -e '
import { readFileSync } from "node:fs";
import { PNG } from "pngjs";
const png = PNG.sync.read(readFileSync(process.argv[1]));
const d = png.data, n = png.width * png.height;
let differing = 0;
const colours = new Set();
for (let i = 0; i < n; i++) {
  const o = i * 4;
  if (Math.abs(d[o] - d[0]) + Math.abs(d[o + 1] - d[1]) + Math.abs(d[o + 2] - d[2]) > 24) differing++;
  if (colours.size < 100) colours.add((d[o] << 16) | (d[o + 1] << 8) | d[o + 2]);
}
const fraction = differing / n;
console.log(`check-report: ${png.width}x${png.height} screenshot, ${(100 * fraction).toFixed(2)}% non-background pixels, ${colours.size >= 100 ? "100+" : colours.size} colours`);
if (fraction < 0.002 || colours.size < 16) {
  console.error("check-report: the screenshot is blank");
  process.exit(1);
}
' "$out_abs"
