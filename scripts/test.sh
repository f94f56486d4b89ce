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
# One real control plane for the whole run (tests/common/real_cluster.rs): build what is missing
# (Go components are cached outside the clone, keyed by version), start it with the operator
# simulator and the real Flux controllers, and hand its kubeconfig to every test process.
cargo build --workspace --bins --quiet
./scripts/real-cluster.sh --tools >/dev/null
cluster_dir=$(mktemp -d "${TMPDIR:-/tmp}/make-test-cluster.XXXXXX")
export KUBE_SANDBOX=${KUBE_SANDBOX:-$PWD/${CARGO_TARGET_DIR:-target}/debug/kube-sandbox}
./scripts/real-cluster.sh --operator-sim --flux-controllers --kubeconfig "$cluster_dir/kubeconfig" \
  >"$cluster_dir/ready" &
cluster_pid=$!
trap 'kill -TERM $cluster_pid 2>/dev/null; wait $cluster_pid 2>/dev/null; rm -rf "$cluster_dir"' EXIT
until grep -q '^ready ' "$cluster_dir/ready" 2>/dev/null; do
  kill -0 "$cluster_pid" 2>/dev/null || { echo "make test: the real control plane did not start (see above)" >&2; exit 1; }
  sleep 0.5
done
export FLUX_TEST_KUBECONFIG=$cluster_dir/kubeconfig
echo "make test: real control plane $(cat "$cluster_dir/ready") shared by every test (FLUX_TEST_KUBECONFIG)" >&2
# The real-CLI acceptance suite (tests/acc_*.rs) runs a second time under OpenTofu (built from
# its module by realcluster/build.sh): tests/common/terraform.rs runs TF_ACC_TERRAFORM_PATH.
tofu=$(./scripts/real-cluster.sh --tools | sed -n 's/^tofu //p')
[[ -x $tofu ]] || { echo "make test: scripts/real-cluster.sh --tools did not provide tofu" >&2; exit 1; }
acc_tests=()
for f in tests/acc_*.rs; do acc_tests+=(--test "$(basename "$f" .rs)"); done
if cargo nextest --version >/dev/null 2>&1; then
  status=0
  cargo nextest run --workspace --no-fail-fast || status=$?
  echo "make test: the acceptance tests again under OpenTofu ($tofu)" >&2
  TF_ACC_TERRAFORM_PATH=$tofu cargo nextest run --no-fail-fast "${acc_tests[@]}" || status=$?
  cargo test --workspace --doc --quiet || status=$?
  exit "$status"
else
  status=0
  cargo test --workspace --no-fail-fast || status=$?
  echo "make test: the acceptance tests again under OpenTofu ($tofu)" >&2
  TF_ACC_TERRAFORM_PATH=$tofu cargo test --no-fail-fast "${acc_tests[@]}" || status=$?
  exit "$status"
fi
