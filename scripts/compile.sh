#!/usr/bin/env bash
# Builds dist/tachikoma-<target> for every release target with `deno compile` and exactly the
# permissions in scripts/permissions, embeds the version and commit, and writes SHA256SUMS.
# Usage: scripts/compile.sh [DENO] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
deno_bin=${1:-deno}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(aarch64-apple-darwin x86_64-apple-darwin x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu)
fi
mapfile -t perms < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' scripts/permissions | grep -v '^$')
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || true)
dirty=$(git status --porcelain 2>/dev/null | grep -q . && echo "-dirty" || true)
printf '{"commit":"%s%s"}\n' "$commit" "$dirty" > src/build_info.json
# deno.json has `deno run` load dynamic imports lazily (startup time, see bench/README.md); with
# that setting `deno compile` would leave every lazily imported module out of the binary. So the
# binary is built with a copy of deno.json without it, beside deno.json (same lock, same paths).
"$deno_bin" eval --quiet --no-lock '
  const c = JSON.parse(Deno.readTextFileSync("deno.json"));
  c.unstable = (c.unstable ?? []).filter((f) => f !== "lazy-dynamic-imports");
  Deno.writeTextFileSync(".deno.compile.json", JSON.stringify(c, null, 2));'
trap 'rm -f src/build_info.json .deno.compile.json' EXIT
mkdir -p dist
built=()
for target in "${targets[@]}"; do
  out="dist/tachikoma-${target}"
  log=$(mktemp)
  if "$deno_bin" compile --config .deno.compile.json --frozen --quiet --target "$target" "${perms[@]}" \
      --include src/build_info.json --output "$out" main.ts >"$log" 2>&1; then
    built+=("$out")
    echo "built $out" >&2
  else
    if grep -qiE 'dl\.deno\.land|denort|download|error sending request|dns error|connect' "$log"; then
      echo "make compile: deno compile could not download the Deno runtime (denort) for $target: this machine cannot reach dl.deno.land; run 'make compile' on a release machine (CI release workflow)" >&2
    else
      echo "make compile: deno compile failed for $target:" >&2
      sed 's/^/  /' "$log" >&2
    fi
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
done
(cd dist && sha256sum "${built[@]#dist/}" > SHA256SUMS)
echo "wrote dist/SHA256SUMS" >&2
