#!/usr/bin/env bash
# `make demo`: apply demo/main.tf with the provider installed by `make install` (plain
# `terraform init` from the filesystem mirror, no dev_overrides) to a LOCAL SIMULATION:
# kube-sandbox (a Kubernetes-API-compatible test server with a simulated Flux Operator) and a
# local Git server (`kube-sandbox git-serve`, the real `git http-backend`). Shows the plan, the
# apply, the resulting status, and a second plan that must report no changes; then stops both
# servers and deletes every temporary file. Any failing step, including a second plan that is not
# empty, fails the script.
#
# `make demo-real` (DEMO_CLUSTER=real): the same demo/main.tf against a REAL control plane
# (`scripts/real-cluster.sh --operator-sim --flux-controllers`: etcd, kube-apiserver and
# kube-controller-manager built from the upstream Go modules, the operator simulator applying the
# real Flux v2.7.5 install objects, and the REAL source- and kustomize-controller syncing from the
# local Git server, applying the FluxInstance manifest Terraform committed). Needs Go on first use.
#
# Environment: CARGO (default cargo), CARGO_TARGET_DIR (default target), TERRAFORM (default
# terraform), KUBECTL (default kubectl), DEMO_GIT=0 to install Flux without Git (flux_instance
# instead of flux_bootstrap_git), DEMO_CLUSTER=real (see above).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
CARGO=${CARGO:-cargo}
TERRAFORM=${TERRAFORM:-terraform}
KUBECTL=${KUBECTL:-kubectl}
target_dir=${CARGO_TARGET_DIR:-$repo_root/target}
case $target_dir in /*) ;; *) target_dir=$repo_root/$target_dir ;; esac
use_git=${DEMO_GIT:-1}
cluster=${DEMO_CLUSTER:-sandbox}
[[ $cluster == sandbox || $cluster == real ]] || { echo "DEMO_CLUSTER must be sandbox or real" >&2; exit 2; }

bold= normal=
if [[ -t 1 ]]; then
    bold=$(tput bold 2>/dev/null || true)
    normal=$(tput sgr0 2>/dev/null || true)
fi
say() { printf '\n%s==> %s%s\n' "$bold" "$*" "$normal"; }
run() {
    printf '%s$ %s%s\n' "$bold" "$*" "$normal"
    "$@"
}
die() {
    printf '\n%sDEMO FAILED: %s%s\n' "$bold" "$*" "$normal" >&2
    exit 1
}
# Shortens the plan for reading: the operator's install manifests (flux_operator.manifests, a
# heredoc of several hundred lines) become one line saying how long they are.
collapse_manifests() {
    awk '{
        plain = $0
        gsub(/\033\[[0-9;]*m/, "", plain)
        if (skipping) {
            if (plain ~ /^[[:space:]]*EOT[[:space:]]*$/) {
                printf "            # ... %d lines of tests/sandbox/fixtures/operator-install.yaml (shortened by demo.sh) ...\n", n
                skipping = 0
                print
            } else n++
            next
        }
        print
        if (plain ~ /manifests[[:space:]]*=[[:space:]]*<<-EOT/) { skipping = 1; n = 0 }
    }'
}
simulation_notice() {
    if [[ $cluster == real ]]; then
        cat <<'EOF'
+--------------------------------------------------------------------------------------------+
| NOTE: the cluster in this demo is a REAL Kubernetes control plane on 127.0.0.1 (etcd,      |
| kube-apiserver, kube-controller-manager built from the upstream Go modules) with the REAL  |
| Flux source-controller and kustomize-controller syncing from a local Git server. Pods do   |
| not run containers (a stand-in kubelet marks them Ready) and the Flux Operator is played   |
| by our simulator (the operator is AGPL; it applies the real Flux v2.7.5 install objects).  |
+--------------------------------------------------------------------------------------------+
EOF
        return
    fi
    cat <<'EOF'
+--------------------------------------------------------------------------------------------+
| NOTE: the "cluster" in this demo is a LOCAL SIMULATION, not a real Kubernetes cluster:     |
| kube-sandbox (a Kubernetes-API-compatible test server) with a SIMULATED Flux Operator that |
| reports Flux as installed and syncs Git, but runs no controllers or containers.            |
| The provider, terraform and kubectl are real. See "Pointing it at a real cluster" in the   |
| README to run the same demo/main.tf against kind or any kubeconfig.                        |
+--------------------------------------------------------------------------------------------+
EOF
}

# --- clean-up, whatever happens ------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/flux-demo.XXXXXX")
pids=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ $status -ne 0 ]]; then
        for log in "$work"/sandbox.log "$work"/git.log; do
            if [[ -s $log ]]; then
                printf '\n--- last lines of %s ---\n' "$(basename "$log")" >&2
                tail -n 20 "$log" >&2
            fi
        done
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts "$@" in the background with stdout in $1.out, waits for its `ready <url>` line, and
# sets $ready_url to the URL. (Not called in a subshell, so its process is in $pids.)
start_server() {
    local name=$1
    shift
    "$@" >"$work/$name.out" 2>"$work/$name.log" &
    pids+=($!)
    local pid=$! deadline=$((SECONDS + ${start_timeout:-60}))
    while ! grep -q '^ready ' "$work/$name.out" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$work/$name.log" >&2
            die "$name exited before it was ready"
        fi
        ((SECONDS < deadline)) || die "$name was not ready within ${start_timeout:-60}s"
        sleep 0.2
    done
    ready_url=$(sed -n 's/^ready //p' "$work/$name.out")
}

simulation_notice

# --- the provider, as `make install` put it into the filesystem mirror -----------------------
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
os=$(uname -s | tr '[:upper:]' '[:lower:]')
arch=$(uname -m | sed -e 's/x86_64/amd64/' -e 's/aarch64/arm64/')
plugin="$HOME/.terraform.d/plugins/registry.terraform.io/fluxrs/flux/$version/${os}_$arch/terraform-provider-flux_v$version"
[[ -x $plugin ]] || die "$plugin is missing: run 'make install' first (make demo does)"
say "Provider fluxrs/flux $version from the filesystem mirror: $plugin"

# --- the simulated cluster and the Git server ----------------------------------------------
say "Building the test servers (kube-sandbox, debug build)"
run "$CARGO" build --quiet -p kube-sandbox --bin kube-sandbox
sandbox_bin=$target_dir/debug/kube-sandbox

kubeconfig=$work/kubeconfig
if [[ $cluster == real ]]; then
    say "Building what is missing of the real control plane (cached in ~/.cache/terraform-provider-flux)"
    KUBE_SANDBOX=$sandbox_bin run ./scripts/real-cluster.sh --tools
    say "Starting the real control plane with the real Flux controllers (scripts/real-cluster.sh)"
    start_timeout=300
    KUBE_SANDBOX=$sandbox_bin start_server sandbox ./scripts/real-cluster.sh \
        --operator-sim --flux-controllers --kubeconfig "$kubeconfig"
else
    say "Starting kube-sandbox with the simulated Flux Operator (SIMULATION, not a real cluster)"
    start_server sandbox "$sandbox_bin" serve --kubeconfig "$kubeconfig" --operator-sim
fi
echo "API server: $ready_url  kubeconfig: $kubeconfig"

git_user=demo
git_password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
if [[ $use_git == 1 ]]; then
    say "Starting a local Git server with an empty repository 'fleet' (basic auth)"
    start_server git "$sandbox_bin" git-serve --root "$work/repos" \
        --username "$git_user" --password "$git_password" --init fleet
    git_url=$ready_url/fleet.git
    echo "Git repository: $git_url"
fi

# --- the configuration ---------------------------------------------------------------------
tf=$work/terraform
mkdir -p "$tf"
cp demo/main.tf "$tf/"
{
    echo "kubeconfig              = \"$kubeconfig\""
    echo "operator_manifests_file = \"$repo_root/tests/sandbox/fixtures/operator-install.yaml\""
    if [[ $use_git == 1 ]]; then
        echo "git_url                 = \"$git_url\""
        echo "git_username            = \"$git_user\""
        echo "git_allow_insecure_http = true"
    fi
} >"$tf/terraform.tfvars"
say "demo/main.tf with these variables (terraform.tfvars; the Git password is passed as TF_VAR_git_password)"
cat "$tf/terraform.tfvars"

# Terraform's own settings: an empty CLI configuration, so no dev_overrides or other
# provider_installation from ~/.terraformrc apply: fluxrs/flux comes from the implied
# ~/.terraform.d/plugins mirror, exactly as for a user after `make install`.
: >"$work/terraformrc"
export TF_CLI_CONFIG_FILE=$work/terraformrc
export TF_VAR_git_password=$git_password
export TF_INPUT=0
unset TF_CLI_ARGS TF_CLI_ARGS_plan TF_CLI_ARGS_apply TF_WORKSPACE KUBECONFIG KUBE_CONFIG_PATH KUBE_CONFIG_PATHS
cd "$tf"

say "terraform init (plain: no dev_overrides)"
printf '%s$ %s%s\n' "$bold" "$TERRAFORM init" "$normal"
"$TERRAFORM" init -no-color >"$work/init.log" || {
    cat "$work/init.log"
    die "terraform init failed"
}
grep -E 'Installing fluxrs/flux|Installed fluxrs/flux|Terraform has been successfully initialized' "$work/init.log"

say "terraform plan (the operator's install.yaml in it is shortened to one line)"
run "$TERRAFORM" plan -out=demo.tfplan | collapse_manifests || die "terraform plan failed"

say "terraform apply"
run "$TERRAFORM" apply -auto-approve demo.tfplan || die "terraform apply failed"

say "The result, as kubectl sees it (in the $([[ $cluster == real ]] && echo REAL || echo SIMULATED) cluster)"
run "$KUBECTL" --kubeconfig "$kubeconfig" get fluxinstance -n flux-system -o wide || die "kubectl failed"
run "$KUBECTL" --kubeconfig "$kubeconfig" get resourceset -n flux-system || die "kubectl failed"
run "$KUBECTL" --kubeconfig "$kubeconfig" get configmap tenant-info -n team-a -o jsonpath='{.data.team}{"\n"}' || die "tenant team-a missing"
run "$KUBECTL" --kubeconfig "$kubeconfig" get deployments -n flux-system || die "kubectl failed"
if [[ $use_git == 1 ]]; then
    say "What Terraform committed to the Git repository"
    run git --git-dir="$work/repos/fleet.git" log --format='%h %an: %s' main || die "git log failed"
    run git --git-dir="$work/repos/fleet.git" ls-tree -r --name-only main || die "git ls-tree failed"
    run "$KUBECTL" --kubeconfig "$kubeconfig" get gitrepository,kustomization -n flux-system || die "kubectl failed"
fi

say "terraform output"
run "$TERRAFORM" output || die "terraform output failed"
[[ $("$TERRAFORM" output -json flux | sed -n 's/.*"ready":\(true\|false\).*/\1/p') == true ]] ||
    die "the FluxInstance is not Ready"

say "A second terraform plan must report no changes"
set +e
run "$TERRAFORM" plan -detailed-exitcode
plan_status=$?
set -e
case $plan_status in
0) ;;
2) die "the second plan is not empty (see above)" ;;
*) die "the second terraform plan failed" ;;
esac

say "Done: init, plan, apply and an empty second plan. Cleaning up the servers and $work."
simulation_notice
