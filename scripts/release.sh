#!/usr/bin/env bash
# Registry-style release artifacts (`make release`), named as the Terraform Registry and the
# OpenTofu registry expect them:
#   terraform-provider-flux_<version>_<os>_<arch>.zip   holding terraform-provider-flux_v<version>
#   terraform-provider-flux_<version>_manifest.json      (terraform-registry-manifest.json)
#   terraform-provider-flux_<version>_SHA256SUMS         (the zips and the manifest; `sha256sum -c`)
# for the host platform, plus every other installed rustup target that builds (a target whose
# linker is missing is reported and skipped). No GPG signature: signing needs the publisher's
# key and happens in the publishing pipeline.
#
# Zips are made with the `zip` CLI when it is installed, else with python3's zipfile module
# (RELEASE_ZIP=zip|python forces one). Both store the binary with mode 0755 and a fixed
# timestamp (SOURCE_DATE_EPOCH, else the last commit's time), so equal binaries give equal zips.
#
# usage: scripts/release.sh [--out DIR] [--binary PATH]
#   --out DIR      where the artifacts go (default: dist)
#   --binary PATH  package PATH as the host binary instead of building (no other targets);
#                  used by the tests, which never make release builds
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=dist
binary=
while [[ $# -gt 0 ]]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "release: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -z $binary || -f $binary ]] || { echo "release: $binary does not exist" >&2; exit 1; }
[[ -z $binary ]] || binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root"

name=terraform-provider-flux
version=$(awk '/^\[package\]/{p=1; next} /^\[/{p=0} p && /^version *=/{gsub(/.*= *"|".*/, ""); print; exit}' Cargo.toml)
[[ -n $version ]] || { echo "release: no [package] version in Cargo.toml" >&2; exit 1; }
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 315532800)}
(( epoch >= 315532800 )) || epoch=315532800 # zip cannot store times before 1980
target_dir=${CARGO_TARGET_DIR:-target}

zip_tool=${RELEASE_ZIP:-}
if [[ -z $zip_tool ]]; then
  if command -v zip >/dev/null; then zip_tool=zip; else zip_tool=python; fi
fi
case $zip_tool in
  zip) command -v zip >/dev/null || { echo "release: RELEASE_ZIP=zip but zip is not installed" >&2; exit 1; } ;;
  python) command -v python3 >/dev/null || { echo "release: neither zip nor python3 is installed" >&2; exit 1; } ;;
  *) echo "release: RELEASE_ZIP must be zip or python" >&2; exit 2 ;;
esac

# <os>_<arch> of a Rust target triple, empty when the registry has no name for it.
platform() {
  local arch os
  case $1 in
    x86_64-*) arch=amd64 ;;
    aarch64-*) arch=arm64 ;;
    i686-* | i586-*) arch=386 ;;
    arm-* | armv7-*) arch=arm ;;
    *) return 0 ;;
  esac
  case $1 in
    *-linux-*) os=linux ;;
    *-apple-darwin) os=darwin ;;
    *-windows-*) os=windows ;;
    *-freebsd) os=freebsd ;;
    *) return 0 ;;
  esac
  echo "${os}_$arch"
}

# package <binary> <os_arch>: the zip for one platform.
package() {
  local source=$1 platform=$2 exe=
  [[ $platform == windows_* ]] && exe=.exe
  local stage member zipfile
  stage=$(mktemp -d)
  member=${name}_v$version$exe
  zipfile=$out/${name}_${version}_$platform.zip
  install -m 0755 "$source" "$stage/$member"
  touch -d "@$epoch" "$stage/$member"
  rm -f "$zipfile"
  if [[ $zip_tool == zip ]]; then
    (cd "$stage" && TZ=UTC zip -q -X "$zipfile" "$member")
  else
    python3 - "$stage/$member" "$zipfile" "$member" "$epoch" <<'PY'
import sys, time, zipfile
source, target, member, epoch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
info = zipfile.ZipInfo(member, date_time=time.gmtime(epoch)[:6])
info.external_attr = 0o100755 << 16
info.create_system = 3  # Unix, so the mode is honoured
info.compress_type = zipfile.ZIP_DEFLATED
with open(source, "rb") as f, zipfile.ZipFile(target, "w") as z:
    z.writestr(info, f.read())
PY
  fi
  rm -rf "$stage"
  echo "release: $zipfile"
}

# Start from a clean set for this version: SHA256SUMS must list exactly what is there.
rm -f "$out/${name}_${version}_"*

host=$(rustc -vV | sed -n 's/^host: //p')
host_platform=$(platform "$host")
[[ -n $host_platform ]] || { echo "release: no registry platform name for host $host" >&2; exit 1; }
done_platforms=("$host_platform")
if [[ -n $binary ]]; then
  package "$binary" "$host_platform"
else
  cargo build --release --bin "$name"
  package "$target_dir/release/$name" "$host_platform"
  for target in $(rustup target list --installed 2>/dev/null || true); do
    [[ $target != "$host" ]] || continue
    p=$(platform "$target")
    if [[ -z $p ]]; then echo "release: skipping $target (no registry platform name)" >&2; continue; fi
    if [[ " ${done_platforms[*]} " == *" $p "* ]]; then echo "release: skipping $target ($p already packaged)" >&2; continue; fi
    exe=; [[ $p == windows_* ]] && exe=.exe
    if cargo build --release --bin "$name" --target "$target"; then
      package "$target_dir/$target/release/$name$exe" "$p"
      done_platforms+=("$p")
    else
      echo "release: skipping $target: the build failed (is its linker/C toolchain installed?)" >&2
    fi
  done
fi

cp terraform-registry-manifest.json "$out/${name}_${version}_manifest.json"
(
  cd "$out"
  sha256sum "${name}_${version}_"*.zip "${name}_${version}_manifest.json" >"${name}_${version}_SHA256SUMS"
  sha256sum -c --quiet "${name}_${version}_SHA256SUMS"
)
echo "release: $out/${name}_${version}_manifest.json"
echo "release: $out/${name}_${version}_SHA256SUMS (zips made with: $zip_tool)"
