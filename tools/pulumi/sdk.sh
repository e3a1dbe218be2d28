#!/usr/bin/env bash
# The TypeScript/Node.js and Go SDKs of the `datera` Pulumi package, generated from the one
# schema (datera_iac/pulumi/schema.json) by the Pulumi CLI that build.sh builds:
#
#   sdk.sh gen              regenerate sdk/nodejs and sdk/go (`pulumi package gen-sdk`)
#   sdk.sh check            exit 1 when sdk/ differs from what gen would write
#   sdk.sh build nodejs OUT compile sdk/nodejs with tsc (npm registry) into OUT/bin and pack
#                           it: prints OUT/<name>-<version>.tgz (`npm publish` takes it)
#   sdk.sh build go         compile-check sdk/go (`go build ./...`, go.sum pinned)
#
# The Go SDK's go.mod is pinned to the Pulumi Go SDK of tools/pulumi/go.mod and tidied, so
# the SDK and a program using it build with -mod=readonly from the module cache.
# Downloads are cached: npm in ${npm_config_cache:-~/.cache/datera-iac/npm}, Go modules
# in the usual module cache.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export npm_config_cache="${npm_config_cache:-$HOME/.cache/datera-iac/npm}"
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
languages=(nodejs go)

cli() {
  local bin
  if ! bin="$(bash "$here/build.sh" --where)"; then
    echo "sdk.sh: the Pulumi CLI is not built: run bash tools/pulumi/build.sh" >&2
    exit 1
  fi
  PULUMI_HOME="$work/home" PULUMI_SKIP_UPDATE_CHECK=true \
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true PATH="$bin:$PATH" "$bin/pulumi" "$@"
}

# generate into $1/<language>
generate() {
  local out="$1" lang
  for lang in "${languages[@]}"; do
    cli package gen-sdk "$root/datera_iac/pulumi/schema.json" --language "$lang" \
      --out "$out" >"$work/gen-$lang.log" 2>&1 || { cat "$work/gen-$lang.log" >&2; exit 1; }
  done
  local pin
  pin="$(sed -n 's#^\s*github.com/pulumi/pulumi/sdk/v3 \(v[^ ]*\).*#\1#p' "$here/go.mod" | head -1)"
  (cd "$out/go" && go mod edit -require "github.com/pulumi/pulumi/sdk/v3@$pin" \
     && go mod tidy >"$work/tidy.log" 2>&1) || { cat "$work/tidy.log" >&2; exit 1; }
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
case "${1:-}" in
  gen)
    generate "$work/sdk"
    for lang in "${languages[@]}"; do
      rm -rf "$root/sdk/$lang" && mkdir -p "$root/sdk" && cp -r "$work/sdk/$lang" "$root/sdk/$lang"
    done
    echo "wrote: $(for l in "${languages[@]}"; do printf 'sdk/%s ' "$l"; done)" ;;
  check)
    generate "$work/sdk"
    stale=0
    for lang in "${languages[@]}"; do
      diff -r -q -x node_modules -x bin "$root/sdk/$lang" "$work/sdk/$lang" >&2 || stale=1
    done
    [ "$stale" = 0 ] || { echo "sdk/ is stale: run bash tools/pulumi/sdk.sh gen" >&2; exit 1; } ;;
  build)
    case "${2:-}" in
      nodejs)
        out="$(mkdir -p "${3:?usage: sdk.sh build nodejs OUT}" && cd "$3" && pwd)"
        rm -rf "$out/src" && cp -r "$root/sdk/nodejs" "$out/src"
        cd "$out/src"
        npm install --no-audit --no-fund --loglevel=error >&2
        npx --no-install tsc >&2
        cp package.json README.md bin/
        (cd bin && npm pack --pack-destination "$out" --loglevel=error | tail -1 \
          | sed "s#^#$out/#") ;;
      go)
        cd "$root/sdk/go" && GOFLAGS="$GOFLAGS -mod=readonly" go build ./... ;;
      *) echo "usage: sdk.sh build nodejs OUT | sdk.sh build go" >&2; exit 2 ;;
    esac ;;
  *) echo "usage: sdk.sh gen | check | build nodejs OUT | build go" >&2; exit 2 ;;
esac
