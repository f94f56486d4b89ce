#!/usr/bin/env bash
# The whole test suite (the README's test command, `make test`): lint, layering, then every
# test of the workspace — unit, protocol, sandbox, kubectl cross-check and real-Terraform
# acceptance tests. Fails with instructions when a required tool is missing; never skips.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for tool in terraform kubectl git; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[[ -x /usr/sbin/sshd ]] || command -v sshd >/dev/null || missing+=("sshd (Debian: apt-get install openssh-server)")
if (( ${#missing[@]} )); then
  echo "make test: missing required tools: ${missing[*]}" >&2
  echo "  terraform >= 1.11: https://developer.hashicorp.com/terraform/install (or set TF_ACC_TERRAFORM_PATH)" >&2
  echo "  kubectl 1.32, git, openssh-server: install with your package manager" >&2
  exit 1
fi
cargo fmt --all -- --check
./scripts/layering.sh
cargo clippy --workspace --all-targets --quiet -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
  cargo test --workspace --doc --quiet
else
  cargo test --workspace --no-fail-fast
fi
