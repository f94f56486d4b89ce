#!/usr/bin/env bash
# Fails when a module imports across the boundaries of DESIGN.md §4:
#   protocol → framework; resources → framework, flux, cluster, git; provider → resources.
#   framework, flux, cluster and git import nothing else from the crate.
# And no two files of src/ import each other (scripts/file_circles.py).
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
check() { # <description> <pattern> <paths...> — any match is a violation
  local what=$1 pattern=$2; shift 2
  local hits
  hits=$(grep -rnE --include='*.rs' "$pattern" "$@" 2>/dev/null | grep -vE '^\S+:\s*//' || true)
  if [[ -n $hits ]]; then
    echo "layering: $what"; echo "$hits" | sed 's/^/  /'; fail=1
  fi
}
non_protocol=$(find src -name '*.rs' -not -path 'src/protocol/*')
# Only src/protocol names tonic, prost or generated types.
check "tonic/prost/tfplugin6 outside src/protocol" '\b(tonic|prost|tonic_health|tonic_prost|tfplugin6)\b' $non_protocol
# Only src/git names git2.
check "git2 outside src/git" '\bgit2\b' $(find src -name '*.rs' -not -path 'src/git/*')
# Leaves import nothing else from the crate.
for leaf in framework flux cluster git; do
  check "src/$leaf imports another module of the crate" \
    "crate::(protocol|provider|resources|$(echo framework flux cluster git | tr ' ' '\n' | grep -vx "$leaf" | paste -sd'|'))\b" "src/$leaf"
done
# protocol depends on framework only.
check "src/protocol imports beyond framework" 'crate::(provider|resources|flux|cluster|git)\b' src/protocol
# resources never import protocol or provider.
check "src/resources imports protocol or provider" 'crate::(protocol|provider)\b' src/resources
# Nothing but provider.rs (and main/lib) imports resources.
check "resources imported outside provider.rs" 'crate::resources\b' $(find src -name '*.rs' -not -path 'src/resources/*' -not -name provider.rs -not -name lib.rs)
# kube clients only in cluster/ (and provider.rs).
check "kube Client/Api outside src/cluster" '\bkube::(Client|Api)\b|\bApi<' $(find src -name '*.rs' -not -path 'src/cluster/*' -not -name provider.rs)
# No two files of src/ import each other, directly or through a circle. The check first proves
# it can fail: on a two-file tree with a circle it must report one.
probe=$(mktemp -d)
mkdir -p "$probe/a"
printf 'pub mod b;\npub mod c;\n' >"$probe/a/mod.rs"
printf 'use crate::a::c::C;\npub struct B;\n' >"$probe/a/b.rs"
printf 'use super::b::B;\npub struct C;\n' >"$probe/a/c.rs"
printf 'pub mod a;\n' >"$probe/lib.rs"
if python3 scripts/file_circles.py "$probe" >/dev/null; then
  echo "layering: the file-circle check missed a planted circle"; fail=1
fi
rm -rf "$probe"
python3 scripts/file_circles.py || fail=1
if [[ $fail -ne 0 ]]; then exit 1; fi
echo "layering: ok"
