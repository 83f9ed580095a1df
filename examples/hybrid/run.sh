#!/usr/bin/env bash
# The hybrid, on one machine: browsers hold a tessera session cookie; the gateway
# turns it into a short-lived JWT per internal service; the services verify it
# locally (Rust with tessera-verify, Python with PyJWT) and never see the cookie.
#
#   examples/hybrid/run.sh          # then follow the curl walk-through it prints
#
#   :7480  tessera          sessions, /login, tokens, JWKS, the revocation feed
#   :7481  tessera gateway  /orders/* -> :9000 (session), /reports/* -> :9001
#                           (session), /public/* -> :9000 (anonymous)
#   :9000  resource-service (Rust, tessera-verify), audience "orders"
#   :9001  reports.py       (Python, PyJWT through the JWKS), audience "reports"
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=examples/hybrid
WORK=${WORK:-$(mktemp -d)}
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

cargo build --release --locked -p tessera -p resource-service >&2
TESSERA=target/release/tessera
export TESSERA_DATA_DIR="$WORK/data" TESSERA_LOG=warn
python3 -c 'import jwt, cryptography' 2>/dev/null || pip install --quiet pyjwt cryptography

wait_for() { for _ in $(seq 300); do curl -sf "$1" >/dev/null 2>&1 && return; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }

TESSERA_RETURN_TO_ORIGINS='["http://127.0.0.1:7481"]' \
  "$TESSERA" serve --listen 127.0.0.1:7480 >"$WORK/tessera.out" 2>"$WORK/tessera.log" &
PIDS+=($!)
wait_for http://127.0.0.1:7480/readyz
echo 'correct horse battery staple' | "$TESSERA" user add alice --password-stdin >/dev/null

# The gateway's own client: it exchanges sessions for tokens and follows revocations.
GATEWAY=$("$TESSERA" client add gateway --grant token_exchange,client_credentials \
  --scope "revocations orders:read reports:read" --audience orders --audience reports \
  --access-ttl 60s --json)
# The Rust service's client: it follows the revocation feed.
ORDERS=$("$TESSERA" client add orders-service --grant client_credentials --scope revocations --json)

target/release/resource-service --issuer http://127.0.0.1:7480 \
  --audience orders --client-id "$(json client_id <<<"$ORDERS")" \
  --client-secret "$(json client_secret <<<"$ORDERS")" --listen 127.0.0.1:9000 \
  >"$WORK/orders.log" 2>&1 &
PIDS+=($!)
python3 "$HERE/reports.py" --issuer http://127.0.0.1:7480 --audience reports --port 9001 &
PIDS+=($!)

cat >"$WORK/gateway.toml" <<TOML
listen = "127.0.0.1:7481"
tessera_url = "http://127.0.0.1:7480"
client_id = "$(json client_id <<<"$GATEWAY")"
client_secret = "$(json client_secret <<<"$GATEWAY")"
login_url = "http://127.0.0.1:7480/login"

[[route]]
prefix = "/orders"
upstream = "http://127.0.0.1:9000"
audience = "orders"
auth = "session"
scopes = ["orders:read"]

[[route]]
prefix = "/reports"
upstream = "http://127.0.0.1:9001"
audience = "reports"
auth = "session"
scopes = ["reports:read"]

[[route]]
prefix = "/public/"
upstream = "http://127.0.0.1:9000"
audience = "orders"
auth = "anonymous"
strip_prefix = true
TOML
"$TESSERA" gateway --config "$WORK/gateway.toml" >"$WORK/gateway.out" 2>"$WORK/gateway.log" &
PIDS+=($!)
wait_for http://127.0.0.1:9000/healthz
for _ in $(seq 100); do grep -q listening "$WORK/gateway.out" 2>/dev/null && break; sleep 0.1; done

cat <<WALK

Everything is up (logs in $WORK). In another shell:

  # 0. An anonymous route: no session needed (here, the Rust service's health check).
  curl -s http://127.0.0.1:7481/public/healthz

  # 1. No session: an API call gets 401, a page gets sent to tessera's /login.
  curl -i http://127.0.0.1:7481/orders
  curl -i -H 'Accept: text/html' http://127.0.0.1:7481/orders

  # 2. Sign in (the form the browser would post), keeping the cookie.
  curl -s -c jar -o /dev/null -w '%{http_code} -> %{redirect_url}\n' \\
    --data-urlencode username=alice --data-urlencode 'password=correct horse battery staple' \\
    --data-urlencode return_to=http://127.0.0.1:7481/orders http://127.0.0.1:7480/login

  # 3. Through the gateway: each service gets a JWT for its own audience, no cookie.
  curl -s -b jar http://127.0.0.1:7481/orders
  curl -s -b jar http://127.0.0.1:7481/reports

  # 4. A forged header or token from the client never reaches a service.
  curl -s -b jar -H 'Authorization: Bearer forged' -H 'X-Tessera-User: root' http://127.0.0.1:7481/reports

  # 5. Log out at tessera: the gateway refuses the session within the feed's latency.
  curl -s -b jar -X POST -H "X-CSRF-Token: \$(curl -s -b jar http://127.0.0.1:7480/v1/session | python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf_token"])')" \\
    http://127.0.0.1:7480/v1/logout
  curl -i -b jar http://127.0.0.1:7481/orders

Press Ctrl-C to stop everything.
WALK
wait
