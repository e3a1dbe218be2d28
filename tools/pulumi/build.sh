#!/usr/bin/env bash
# Builds the Pulumi CLI and the language hosts pinned by this module's go.mod into
#   ${DATERA_PULUMI_CACHE:-~/.cache/datera-iac/pulumi}/<version>-<digest>/bin
# and does nothing when that directory is already complete; prints the directory.
# <digest> covers go.mod, go.sum and this module's Go sources, so changing a pin builds
# a fresh directory. `build.sh --where` only prints the directory (exit 1 when incomplete).
#
#   pulumi                       github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
#   pulumi-language-yaml         github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml
#   pulumi-language-python       ./cmd/pulumi-language-python (ours: the Go module proxy
#                                does not serve Pulumi's own Python host module)
#   pulumi-language-python-exec  the Pulumi SDK module's Python program launcher
#   pulumi-language-nodejs       ./cmd/pulumi-language-nodejs (ours, same reason; Node.js
#                                programs and `pulumi package gen-sdk --language nodejs`)
#   pulumi-language-go           ./cmd/pulumi-language-go (ours; Go programs and gen-sdk)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${DATERA_PULUMI_CACHE:-$HOME/.cache/datera-iac/pulumi}"
pin() { sed -n "s#^\s*$1 \(v[^ ]*\).*#\1#p" "$here/go.mod" | head -1; }
version="$(pin github.com/pulumi/pulumi/pkg/v3)"
yaml_version="$(pin github.com/pulumi/pulumi-yaml)"
digest="$(cd "$here" && cat go.mod go.sum build.sh $(find . -name '*.go' | sort) | sha256sum | cut -c1-12)"
bin="$cache/$version-$digest/bin"
tools=(pulumi pulumi-language-yaml pulumi-language-python pulumi-language-python-exec
       pulumi-language-nodejs pulumi-language-go)
complete=1
for t in "${tools[@]}"; do [ -x "$bin/$t" ] || complete=0; done
if [ "${1:-}" = "--where" ]; then echo "$bin"; [ "$complete" = 1 ]; exit; fi
if [ "$complete" = 1 ]; then echo "$bin"; exit 0; fi
command -v go >/dev/null || { echo "build.sh: the Go toolchain (go) is not installed" >&2; exit 1; }
echo "building the Pulumi CLI $version and its language hosts into $bin" >&2
start=$(date +%s)
tmp="$bin.partial.$$"
rm -rf "$tmp" && mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
cd "$here"
export GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0
nice -n 10 go build -trimpath -o "$tmp/" -ldflags "-s -w \
  -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version \
  -X github.com/pulumi/pulumi-yaml/pkg/version.Version=$yaml_version \
  -X main.version=$version" \
  github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
  github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml \
  ./cmd/pulumi-language-python ./cmd/pulumi-language-nodejs ./cmd/pulumi-language-go
sdk="$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)"
install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$tmp/"
rm -rf "$bin" && mkdir -p "$(dirname "$bin")" && mv "$tmp" "$bin"
echo "built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
