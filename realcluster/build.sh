#!/usr/bin/env bash
# Builds the real parts of the test environment from the Go wrapper modules beside this script,
# once per machine, into a cache OUTSIDE the clone, and prints one line `<name> <absolute path>`
# per tool it provides (nothing else on stdout; progress goes to stderr).
#
#   realcluster/build.sh [kube] [flux-controllers] [flux-manifests] [tofu]   (default: all)
#
# Components (each keyed in the cache by its pinned version and a hash of its wrapper module and
# the Go version, so a change of pin rebuilds and a warm machine rebuilds nothing):
#   kube              kube-apiserver, kube-controller-manager, etcd (one multi-call binary,
#                     realcluster/kube: k8s.io/kubernetes v1.37.2, go.etcd.io/etcd/server/v3 v3.7.0)
#   flux-controllers  source-controller (v1.8.5) and kustomize-controller (v1.7.3)
#   flux-manifests    the controllers' own config/ (CRDs, Deployment, Service) copied from the Go
#                     module cache, for `kube-sandbox operator-sim --flux-manifests` (never
#                     committed)
#   tofu              OpenTofu v1.12.6 (github.com/opentofu/opentofu/cmd/tofu)
#
# Environment: FLUX_TEST_CACHE (default ~/.cache/terraform-provider-flux), GOMODCACHE and GOCACHE
# (Go's defaults, both outside the clone), GO (default `go`; needs Go >= 1.26.6).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${FLUX_TEST_CACHE:-${HOME:?}/.cache/terraform-provider-flux}
GO=${GO:-go}
log() { printf 'realcluster/build.sh: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

components=("$@")
((${#components[@]})) || components=(kube flux-controllers flux-manifests tofu)

command -v "$GO" >/dev/null 2>&1 || die "Go is not installed (needed to build ${components[*]}).
  Install Go >= 1.26.6 (e.g. the official tarball for linux/amd64 into /usr/local/go, then
  PATH=/usr/local/go/bin:\$PATH), or set GO to the go binary. The builds need the Go module proxy."
go_version=$("$GO" env GOVERSION)
case $go_version in
go1.2[6-9]* | go1.[3-9][0-9]*) ;;
*) die "Go $go_version is too old: the wrapper modules need Go >= 1.26.6 (set GO or PATH)" ;;
esac
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly GOWORK=off CGO_ENABLED=0

mkdir -p "$cache/bin"
# locked <name>: one build of <name> at a time per machine (tests, CI and people may ask
# concurrently); the lock is held until this script exits.
declare -A locked_fds=()
locked() {
    [[ -n ${locked_fds[$1]:-} ]] && return
    local fd
    exec {fd}>"$cache/.build-$1.lock"
    flock "$fd"
    locked_fds[$1]=$fd
}

# key <wrapper dir> <ldflags> -> a short hash over the wrapper module, the link flags and the Go
# version.
key() {
    local files=("$1"/go.mod "$1"/go.sum)
    shopt -s nullglob
    files+=("$1"/*.go)
    shopt -u nullglob
    { cat "${files[@]}"; echo "$2 $go_version"; } | sha256sum | cut -c1-12
}

# build <name> <wrapper dir> <package> <version> <ldflags> -> prints the binary path
build() {
    local name=$1 dir=$here/$2 pkg=$3 version=$4 ldflags=$5
    local out=$cache/bin/$name-$version-$(key "$dir" "$ldflags")
    [[ -x $out/$name ]] || locked "$name"
    if [[ ! -x $out/$name ]]; then
        log "building $name $version (cold: several minutes on 2 cores) into $out"
        local start=$SECONDS tmp
        tmp=$(mktemp -d "$cache/bin/.tmp-$name.XXXXXX")
        if ! (cd "$dir" && "$GO" build -trimpath -ldflags "-s -w $ldflags" -o "$tmp/$name" "$pkg") >&2; then
            rm -rf "$tmp"
            die "building $name $version failed (see above). It needs the Go module proxy for the
  modules pinned in $dir/go.mod (GOPROXY=$("$GO" env GOPROXY))."
        fi
        rm -rf "$out"
        mv "$tmp" "$out"
        log "built $name in $((SECONDS - start)) s"
    fi
    printf '%s\n' "$out/$name"
}

kube_version=v1.37.2
kube_ldflags() {
    local v=$kube_version minor
    minor=${v#v1.}
    minor=${minor%%.*}
    local p flags=
    for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
        flags+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor"
        flags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
    done
    printf '%s' "$flags"
}

for component in "${components[@]}"; do
    case $component in
    kube)
        bin=$(build kube-cp kube . "$kube_version" "$(kube_ldflags)")
        dir=$(dirname "$bin")
        for tool in kube-apiserver kube-controller-manager etcd; do
            ln -sfn kube-cp "$dir/$tool"
            printf '%s %s\n' "$tool" "$dir/$tool"
        done
        ;;
    flux-controllers)
        printf 'source-controller %s\n' \
            "$(build source-controller source-controller github.com/fluxcd/source-controller v1.8.5 '')"
        printf 'kustomize-controller %s\n' \
            "$(build kustomize-controller kustomize-controller github.com/fluxcd/kustomize-controller v1.7.3 '')"
        ;;
    flux-manifests)
        # The Flux v2.7.5 controllers' own config/, from the Go module cache. Image tags are those
        # the release ships; module-version says which module the files came from.
        out=$cache/flux-manifests/v2.7.5-$(cat "$here"/source-controller/go.mod "$here"/kustomize-controller/go.mod | sha256sum | cut -c1-12)
        [[ -f $out/flux-version ]] || locked flux-manifests
        if [[ ! -f $out/flux-version ]]; then
            tmp=$(mktemp -d "$cache/.tmp-manifests.XXXXXX")
            echo v2.7.5 >"$tmp/flux-version"
            for spec in source-controller:v1.8.5:v1.7.4 kustomize-controller:v1.7.3:v1.7.3; do
                IFS=: read -r c module_version tag <<<"$spec"
                moddir=$(cd "$here/$c" && "$GO" mod download -json "github.com/fluxcd/$c@$module_version" |
                    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
                [[ -d $moddir/config ]] || die "no config/ in github.com/fluxcd/$c@$module_version ($moddir)"
                mkdir -p "$tmp/$c/crd" "$tmp/$c/manager"
                cp "$moddir"/config/crd/bases/*.yaml "$tmp/$c/crd/"
                cp "$moddir"/config/manager/*.yaml "$tmp/$c/manager/"
                rm -f "$tmp/$c/manager/kustomization.yaml"
                echo "$module_version" >"$tmp/$c/module-version"
                echo "$tag" >"$tmp/$c/image-tag"
            done
            chmod -R u+w "$tmp"
            mkdir -p "$(dirname "$out")"
            rm -rf "$out"
            mv "$tmp" "$out"
        fi
        printf 'flux-manifests %s\n' "$out"
        ;;
    tofu)
        printf 'tofu %s\n' "$(build tofu tofu github.com/opentofu/opentofu/cmd/tofu v1.12.6 \
            '-X github.com/opentofu/opentofu/version.dev=no')"
        ;;
    *) die "unknown component $component (kube, flux-controllers, flux-manifests, tofu)" ;;
    esac
done
