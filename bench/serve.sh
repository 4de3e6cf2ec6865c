#!/usr/bin/env bash
# Load test of `clinicalfed serve` with wrk on this machine: scores examples/scoring/sepsis-bundle.json (one ICU
# patient's FHIR Bundle) against a model the script trains itself (the seeded demo), and prints one JSON object:
# requests_per_s, p50_ms, p90_ms, p99_ms, requests, non_2xx, seconds. Usage: bench/serve.sh [seconds] [connections]
# The server runs with server GC (GC_SERVER=0 for workstation GC, the CLI's default).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${1:-15}"
CONNECTIONS="${2:-16}"
PORT="${PORT:-18181}"
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 2; }
WORK="$(mktemp -d)"
trap 'kill "${SERVER:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
dotnet build src/ClinicalFed.Cli -c Release -v q -nologo >&2
CLI="src/ClinicalFed.Cli/bin/Release/net10.0/clinicalfed.dll"
dotnet "$CLI" demo --out "$WORK/demo" --patients 150 --rounds 2 >/dev/null
DOTNET_gcServer="${GC_SERVER:-1}" dotnet "$CLI" serve --model "$WORK/demo/store/federations/simulation/rounds/00001" --urls "http://127.0.0.1:$PORT" --dev-no-auth 2>"$WORK/serve.log" &
SERVER=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/fhir/metadata" >/dev/null && break; sleep 0.2; done
cat > "$WORK/post.lua" <<'LUA'
local f = assert(io.open(os.getenv("BUNDLE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/fhir+json"
done = function(summary, latency, requests)
  local non2xx = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format('{"requests_per_s": %.1f, "p50_ms": %.2f, "p90_ms": %.2f, "p99_ms": %.2f, "requests": %d, "non_2xx": %d, "seconds": %.1f}\n',
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    summary.requests, non2xx, summary.duration / 1e6))
end
LUA
URL="http://127.0.0.1:$PORT/fhir/Patient/\$sepsis-risk"
BUNDLE="$PWD/examples/scoring/sepsis-bundle.json" wrk -t 2 -c "$CONNECTIONS" -d "${WARMUP_SECONDS:-10}s" -s "$WORK/post.lua" "$URL" >/dev/null   # warm-up: tiered JIT reaches its optimized code (steady state)
BUNDLE="$PWD/examples/scoring/sepsis-bundle.json" wrk -t 2 -c "$CONNECTIONS" -d "${SECONDS_TO_RUN}s" --timeout 10s -s "$WORK/post.lua" "$URL" | tail -n 1
