#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for tests, demos and people:
#
#   scripts/real-cluster.sh --kubeconfig FILE [--operator-sim] [--flux-controllers]
#   scripts/real-cluster.sh --tools
#
# Starts etcd, kube-apiserver and kube-controller-manager (built from the upstream Go modules
# pinned in realcluster/, see realcluster/build.sh) on 127.0.0.1 with free ports and token auth,
# plus `kube-sandbox kubelet-sim` (a fake Node: Pods are bound, reported Running and Ready, so the
# real Deployment controller makes Deployments Available). Writes an admin kubeconfig (CA + bearer
# token) to FILE, then prints exactly one line `ready <server URL>` on stdout once the API server
# is ready and every requested part runs. Runs in the foreground; on SIGINT/SIGTERM, when its
# parent process dies, or when any part exits, it stops everything and removes its files
# (including FILE); exit status 0 only for a requested stop.
#
#   --operator-sim      the Flux Operator simulator (`kube-sandbox operator-sim`) applying the REAL
#                       Flux v2.7.5 install objects (CRDs, Deployments, Services) taken from the
#                       Flux controllers' Go modules at build time
#   --flux-controllers  the real source-controller and kustomize-controller as host processes
#                       (their CRDs installed first); with --operator-sim the simulator leaves
#                       GitRepositories and Kustomizations to them
#   --tools             build what is missing and print `<name> <absolute path>` per tool
#                       (kube-apiserver, kube-controller-manager, etcd, source-controller,
#                       kustomize-controller, tofu, kube-sandbox, flux-manifests)
#
# Environment: FLUX_TEST_CACHE (binary cache, default ~/.cache/terraform-provider-flux),
# KUBE_SANDBOX (the kube-sandbox binary; default: built with cargo into the target dir),
# REAL_CLUSTER_LOG_DIR (keep the components' logs there instead of deleting them),
# KUBECTL (default kubectl).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUBECTL=${KUBECTL:-kubectl}
log() { printf 'real-cluster.sh: %s\n' "$*" >&2; }
usage() {
    sed -n '2,4p' "${BASH_SOURCE[0]}" | sed 's/^# //' >&2
    exit 2
}

kubeconfig= operator_sim=0 flux_controllers=0 tools=0
while (($#)); do
    case $1 in
    --kubeconfig)
        (($# > 1)) || usage
        kubeconfig=$2
        shift 2
        ;;
    --operator-sim) operator_sim=1 && shift ;;
    --flux-controllers) flux_controllers=1 && shift ;;
    --tools) tools=1 && shift ;;
    -h | --help) usage ;;
    *)
        log "unknown argument $1"
        usage
        ;;
    esac
done

kube_sandbox_binary() {
    if [[ -n ${KUBE_SANDBOX:-} ]]; then
        [[ -x $KUBE_SANDBOX ]] || {
            log "KUBE_SANDBOX=$KUBE_SANDBOX is not executable"
            exit 1
        }
        printf '%s\n' "$KUBE_SANDBOX"
        return
    fi
    local target=${CARGO_TARGET_DIR:-$repo/target}
    case $target in /*) ;; *) target=$repo/$target ;; esac
    (cd "$repo" && ${CARGO:-cargo} build --quiet -p kube-sandbox --bin kube-sandbox) >&2 || {
        log "building kube-sandbox with cargo failed"
        exit 1
    }
    printf '%s\n' "$target/debug/kube-sandbox"
}

if ((tools)); then
    "$repo/realcluster/build.sh"
    printf 'kube-sandbox %s\n' "$(kube_sandbox_binary)"
    exit 0
fi
[[ -n $kubeconfig ]] || usage
command -v "$KUBECTL" >/dev/null || {
    log "kubectl is needed (readiness checks): install kubectl or set KUBECTL"
    exit 1
}
command -v openssl >/dev/null || {
    log "openssl is needed (service-account key): apt-get install openssl"
    exit 1
}

# --- tools ---------------------------------------------------------------------------------
wanted=(kube)
((operator_sim || flux_controllers)) && wanted+=(flux-manifests)
((flux_controllers)) && wanted+=(flux-controllers)
declare -A tool
while read -r name path; do
    tool[$name]=$path
done < <("$repo/realcluster/build.sh" "${wanted[@]}")
sandbox=$(kube_sandbox_binary)

# --- work directory and clean-up -----------------------------------------------------------
parent=$PPID
work=$(mktemp -d "${TMPDIR:-/tmp}/real-cluster.XXXXXX")
pids=() names=() reserved=()
stopping=0
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stopping=1
    local i
    # Reverse start order: controllers first, etcd last.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[i]}" 2>/dev/null || true
    done
    local deadline=$((SECONDS + 10))
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        while kill -0 "${pids[i]}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
        kill -KILL "${pids[i]}" 2>/dev/null || true
        wait "${pids[i]}" 2>/dev/null || true
    done
    if [[ $status -ne 0 && $status -ne 130 && $status -ne 143 ]]; then
        for f in "$work"/*.log; do
            [[ -s $f ]] || continue
            printf '\n--- last lines of %s ---\n' "$(basename "$f")" >&2
            tail -n 15 "$f" >&2
        done
    fi
    if [[ -n ${REAL_CLUSTER_LOG_DIR:-} ]]; then
        mkdir -p "$REAL_CLUSTER_LOG_DIR"
        cp "$work"/*.log "$REAL_CLUSTER_LOG_DIR"/ 2>/dev/null || true
    fi
    rm -rf "$work"
    ((${#reserved[@]} == 0)) || rmdir "${reserved[@]}" 2>/dev/null || true
    [[ -n $kubeconfig ]] && rm -f "$kubeconfig"
    case $status in
    130 | 143) exit 0 ;; # a requested stop
    *) exit "$status" ;;
    esac
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
    log "ERROR: $*"
    exit 1
}

# start <name> <command...>: in the background, output to $work/<name>.log.
start() {
    local name=$1
    shift
    "$@" >"$work/$name.out" 2>"$work/$name.log" </dev/null &
    pids+=($!)
    names+=("$name")
}

# free_port VAR: sets VAR to a free loopback port. Ports come from below the kernel's ephemeral
# range (outgoing connections take ports from that range, so a port chosen there can be taken
# between the check and the bind) and are reserved across concurrent runs of this script by an
# atomic mkdir under $port_dir (released when this script exits).
port_dir=${TMPDIR:-/tmp}/real-cluster-ports
mkdir -p "$port_dir" 2>/dev/null || true
ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
    local -n out=$1
    local p span=$((ephemeral_low - 10000))
    ((span > 1000)) || span=20000
    for _ in $(seq 1 500); do
        p=$((10000 + (RANDOM * 32768 + RANDOM) % span))
        mkdir "$port_dir/$p" 2>/dev/null || continue
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            rmdir "$port_dir/$p" 2>/dev/null || true
            continue
        fi
        reserved+=("$port_dir/$p")
        out=$p
        return
    done
    die "no free port found"
}

# check_alive: fails naming the part that exited.
check_alive() {
    local i
    for i in "${!pids[@]}"; do
        if ! kill -0 "${pids[i]}" 2>/dev/null; then
            die "${names[i]} exited (log: $(tail -n 5 "$work/${names[i]}.log" 2>/dev/null | tr '\n' ' '))"
        fi
    done
}

# wait_for <what> <seconds> <command...>
wait_for() {
    local what=$1 timeout=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        check_alive
        ((SECONDS < deadline)) || die "$what not ready within ${timeout}s"
        sleep 0.2
    done
}

# wait_ready_line <name>: waits for the `ready` line a kube-sandbox subcommand prints.
wait_ready_line() {
    wait_for "$1" 60 grep -q '^ready ' "$work/$1.out"
}

# http_ok <port> <path>: a plain HTTP GET on loopback answered 200 (no curl needed).
http_ok() {
    local reply
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
    IFS= read -r -t 5 reply <&3 || true
    exec 3<&-
    [[ $reply == "HTTP/1."?" 200"* ]]
}

started=$SECONDS
# --- etcd ----------------------------------------------------------------------------------
free_port etcd_port
free_port etcd_peer
start etcd "${tool[etcd]}" --name=etcd0 --data-dir="$work/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer" \
    --initial-cluster="etcd0=http://127.0.0.1:$etcd_peer" --unsafe-no-fsync --log-level=warn

# --- kube-apiserver --------------------------------------------------------------------------
token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
printf '%s,admin,admin,"system:masters"\n' "$token" >"$work/tokens.csv"
openssl genrsa -out "$work/sa.key" 2048 2>/dev/null || die "openssl genrsa failed"
mkdir -p "$work/certs"
free_port api_port
start kube-apiserver "${tool[kube-apiserver]}" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
    --cert-dir="$work/certs" --token-auth-file="$work/tokens.csv" \
    --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$work/sa.key" --service-account-signing-key-file="$work/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 --endpoint-reconciler-type=none \
    --allow-privileged=true --profiling=false
# The apiserver writes its self-signed serving certificate (with its CA) on start.
wait_for "kube-apiserver's certificate" 60 test -s "$work/certs/apiserver.crt"
server=https://127.0.0.1:$api_port
{
    printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: real-cluster\n  cluster:\n'
    printf '    server: %s\n    certificate-authority-data: %s\n' "$server" "$(base64 -w0 <"$work/certs/apiserver.crt")"
    printf 'users:\n- name: admin\n  user:\n    token: %s\n' "$token"
    printf 'contexts:\n- name: real-cluster\n  context:\n    cluster: real-cluster\n    user: admin\n    namespace: default\n'
    printf 'current-context: real-cluster\n'
} >"$work/kubeconfig"
kc() { "$KUBECTL" --kubeconfig "$work/kubeconfig" --request-timeout=5s "$@"; }
wait_for kube-apiserver 120 kc get --raw /readyz
api_ready=$SECONDS

# --- kube-controller-manager ---------------------------------------------------------------
free_port cm_port
start kube-controller-manager "${tool[kube-controller-manager]}" \
    --kubeconfig="$work/kubeconfig" --authentication-kubeconfig="$work/kubeconfig" \
    --authorization-kubeconfig="$work/kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port="$cm_port" \
    --service-account-private-key-file="$work/sa.key" --root-ca-file="$work/certs/apiserver.crt" \
    --use-service-account-credentials=false --cluster-name=real-cluster \
    --concurrent-deployment-syncs=10 --concurrent-replicaset-syncs=10 --concurrent-gc-syncs=20 \
    --concurrent-namespace-syncs=10
# The root CA publisher's ConfigMap shows the controllers run.
wait_for kube-controller-manager 60 kc get configmap kube-root-ca.crt -n default

# --- the fake node ---------------------------------------------------------------------------
start kubelet-sim "$sandbox" kubelet-sim --kubeconfig "$work/kubeconfig"
wait_ready_line kubelet-sim

# --- the Flux controllers ------------------------------------------------------------------
if ((flux_controllers)); then
    manifests=${tool[flux-manifests]}
    kc get namespace flux-system >/dev/null 2>&1 || kc create namespace flux-system >/dev/null
    # Their CRDs first: the controllers' caches need the kinds to exist.
    kc apply --server-side --field-manager=real-cluster -f "$manifests/source-controller/crd" \
        -f "$manifests/kustomize-controller/crd" >/dev/null
    kc wait --for=condition=Established --timeout=60s crd --all >/dev/null
    mkdir -p "$work/storage"
    free_port storage_port
    free_port sc_health
    free_port kc_health
    export KUBECONFIG=$work/kubeconfig RUNTIME_NAMESPACE=flux-system
    start source-controller "${tool[source-controller]}" --watch-all-namespaces=true \
        --enable-leader-election=false --log-level=info --log-encoding=json \
        --metrics-addr=0 --health-addr="127.0.0.1:$sc_health" --events-addr= \
        --storage-path="$work/storage" --storage-addr="127.0.0.1:$storage_port" \
        --storage-adv-addr="127.0.0.1:$storage_port"
    start kustomize-controller "${tool[kustomize-controller]}" --watch-all-namespaces=true \
        --enable-leader-election=false --log-level=info --log-encoding=json \
        --metrics-addr=0 --health-addr="127.0.0.1:$kc_health" --events-addr=
    unset KUBECONFIG
    wait_for source-controller 120 http_ok "$sc_health" /readyz
    wait_for kustomize-controller 120 http_ok "$kc_health" /readyz
fi

# --- the operator simulator ----------------------------------------------------------------
if ((operator_sim)); then
    sim_args=(--flux-manifests "${tool[flux-manifests]}")
    ((flux_controllers)) && sim_args+=(--no-sync)
    start operator-sim "$sandbox" operator-sim --kubeconfig "$work/kubeconfig" "${sim_args[@]}"
    wait_ready_line operator-sim
fi

# --- ready ---------------------------------------------------------------------------------
mkdir -p "$(dirname "$kubeconfig")"
cp "$work/kubeconfig" "$kubeconfig.tmp.$$"
mv "$kubeconfig.tmp.$$" "$kubeconfig"
log "API server ready after $((api_ready - started)) s, everything after $((SECONDS - started)) s (logs in $work)"
printf 'ready %s\n' "$server"

while :; do
    sleep 1 &
    wait $! || true
    check_alive
    kill -0 "$parent" 2>/dev/null || {
        log "parent process $parent is gone: stopping"
        exit 143
    }
done
