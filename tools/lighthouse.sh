#!/bin/sh
# tools/lighthouse.sh OUT [REPORT_DIR]: Lighthouse 12.8.2 (mobile) on the five page types of a built
# site, offline; exit 1 when a page misses tools/lighthouse-thresholds.json. Builds nothing.
# Needs: `npm ci` (node_modules/lighthouse), Debian chromium (or CHROME_PATH), python3 (or PYTHON).
# REPORT_DIR (default: a new temporary folder) receives lighthouse.json, the batch's raw scores.
set -eu
out=${1:?usage: tools/lighthouse.sh OUT [REPORT_DIR]}
tools=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
chrome=${CHROME_PATH:-$(command -v chromium || true)}
[ -f "$out/index.html" ] || { echo "lighthouse.sh: $out/index.html not found: build the site first" >&2; exit 2; }
[ -d "$tools/../node_modules/lighthouse" ] || { echo "lighthouse.sh: node_modules/lighthouse missing: run npm ci" >&2; exit 2; }
[ -n "$chrome" ] || { echo "lighthouse.sh: chromium not found: apt-get install chromium, or set CHROME_PATH" >&2; exit 2; }
report=${2:-$(mktemp -d)}
mkdir -p "$report"

"$python" "$tools/serve_out.py" "$out" >"$report/server.url" &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
for _ in $(seq 100); do
  [ -s "$report/server.url" ] && break
  kill -0 "$server" 2>/dev/null || { echo "lighthouse.sh: the server did not start" >&2; exit 2; }
  sleep 0.1
done
base=$(head -n 1 "$report/server.url")
[ -n "$base" ] || { echo "lighthouse.sh: the server gave no address" >&2; exit 2; }

CHROME_PATH=$chrome node "$tools/lighthouse_batch.mjs" "$report/lighthouse.json" \
  home="$base/" \
  hub="$base/help/cigna/" \
  hand-written="$base/help/cigna/cimt/prior-authorization/" \
  fallback="$base/help/aetna/knee-arthroscopy/out-of-network/" \
  404="$base/no-such-page/" || status=$?
[ -f "$report/lighthouse.json" ] || exit "${status:-2}"
echo "lighthouse.sh: raw results in $report/lighthouse.json"
"$python" "$tools/lighthouse_gate.py" "$report/lighthouse.json"
