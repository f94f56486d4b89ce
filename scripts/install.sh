#!/usr/bin/env bash
# Installs a provider binary into a Terraform / OpenTofu filesystem mirror, unpacked layout:
#   <plugins>/<host>/fluxrs/flux/<version>/<os>_<arch>/terraform-provider-flux_v<version>
# for host registry.terraform.io (Terraform's `fluxrs/flux`) and registry.opentofu.org
# (OpenTofu's `fluxrs/flux`). `make install` runs it with the release binary; the tests run it
# with the debug binary and a temporary plugins directory.
#
# usage: scripts/install.sh <binary> [<plugins-dir>]    (default: ~/.terraform.d/plugins)
# Prints every installed path on stdout.
set -euo pipefail
if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 <binary> [<plugins-dir>]" >&2
  exit 2
fi
binary=$1
plugins=${2:-$HOME/.terraform.d/plugins}
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ ! -f $binary || ! -x $binary ]]; then
  echo "install: $binary is not an executable file (build it first: cargo build --release)" >&2
  exit 1
fi
# The [package] version of Cargo.toml.
version=$(awk '/^\[package\]/{p=1; next} /^\[/{p=0} p && /^version *=/{gsub(/.*= *"|".*/, ""); print; exit}' "$root/Cargo.toml")
[[ -n $version ]] || { echo "install: no [package] version in $root/Cargo.toml" >&2; exit 1; }
os=$(uname -s | tr '[:upper:]' '[:lower:]')
case $(uname -m) in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  i386 | i686) arch=386 ;;
  armv6l | armv7l) arch=arm ;;
  *) arch=$(uname -m) ;;
esac
for host in registry.terraform.io registry.opentofu.org; do
  dir=$plugins/$host/fluxrs/flux/$version/${os}_$arch
  mkdir -p "$dir"
  install -m 0755 "$binary" "$dir/terraform-provider-flux_v$version"
  echo "$dir/terraform-provider-flux_v$version"
done
