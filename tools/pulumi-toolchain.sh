#!/usr/bin/env bash
# The Pulumi engine of this project, built from Go modules (no Pulumi download site is reachable
# from our machines): the CLI, the Python language host and its two scripts in .tools/pulumi/bin,
# and a PULUMI_HOME in .tools/pulumi/home with the docker and random providers installed at the
# versions requirements.txt pins for their SDKs (a plugin must match its SDK).
#
#   scripts/pulumi-toolchain          build or install what is missing (seconds when cached)
#   scripts/pulumi-toolchain --env    print `export NAME=value` lines for eval; builds nothing,
#                                     exits 3 (reason on stderr) when the toolchain is incomplete
#
# Built outputs are cached per machine under $WPSWARM_CACHE (default ~/.cache/wordpress-swarm),
# keyed by what went into them, so a fresh clone on the same machine copies instead of building.
#
# What the Go module proxy serves decides what is built here:
#   * the CLI (github.com/pulumi/pulumi/pkg/v3, tools/pulumi-cli/go.mod): built;
#   * the language host's two scripts: copied out of the sdk/v3 module (the module cache drops
#     their exec bits);
#   * the language host binary and the two provider plugins: their modules (the untagged
#     sdk/python/cmd/pulumi-language-python/v3, pulumi-docker/provider/v5, pulumi-random/provider/v4)
#     are refused by the proxy our machines reach. They are installed from files an operator
#     supplies in $WPSWARM_PULUMI_PLUGINS (default $WPSWARM_CACHE/pulumi-plugins), named
#       pulumi-language-python
#       pulumi-resource-docker-v<pulumi-docker version>
#       pulumi-resource-random-v<pulumi-random version>
#     e.g. copied from ~/.pulumi/plugins of a machine that can download them, or built where the
#     modules can be had. Missing files are named, with that remedy, and the script exits 4.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.tools/pulumi"
bin="$tools/bin"
home="$tools/home"
cache="${WPSWARM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wordpress-swarm}"
supplied="${WPSWARM_PULUMI_PLUGINS:-$cache/pulumi-plugins}"
cli_module="$root/tools/pulumi-cli"

say() { echo "pulumi-toolchain: $*" >&2; }

pinned() { # the version requirements.txt pins for a Python package
  sed -n "s/^$1==\([0-9][0-9.]*\).*/\1/p" "$root/requirements.txt"
}
cli_version() { sed -n 's#^\tgithub.com/pulumi/pulumi/pkg/v3 v\([^ ]*\).*$#\1#p' "$cli_module/go.mod"; }

docker_version=$(pinned pulumi-docker)
random_version=$(pinned pulumi-random)

env_lines() {
  echo "export PATH=$bin:\$PATH"
  echo "export PULUMI_HOME=$home"
  # Never reach for a download site: plugins come from PULUMI_HOME only, and no update check.
  echo "export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true"
  echo "export PULUMI_SKIP_UPDATE_CHECK=true"
}

complete_reason() { # empty when everything the engine needs is in place
  local file
  for file in pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python; do
    [ -x "$bin/$file" ] || { echo "$bin/$file is missing"; return; }
  done
  [ -x "$home/plugins/resource-docker-v$docker_version/pulumi-resource-docker" ] \
    || { echo "the docker provider v$docker_version is not installed in $home"; return; }
  [ -x "$home/plugins/resource-random-v$random_version/pulumi-resource-random" ] \
    || { echo "the random provider v$random_version is not installed in $home"; return; }
  [ "$("$bin/pulumi" version 2>/dev/null)" = "v$(cli_version)" ] || echo "$bin/pulumi is not v$(cli_version)"
}

if [ "${1:-}" = "--env" ]; then
  reason=$(complete_reason)
  if [ -n "$reason" ]; then
    say "incomplete: $reason (run scripts/pulumi-toolchain)"
    exit 3
  fi
  env_lines
  exit 0
fi
[ $# -eq 0 ] || { say "usage: scripts/pulumi-toolchain [--env]"; exit 2; }

command -v go >/dev/null || { say "no Go toolchain on PATH: it builds the Pulumi CLI"; exit 2; }
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
mkdir -p "$bin" "$home/plugins"

# --- the CLI ---------------------------------------------------------------------------------
version=$(cli_version)
# Release builds' flags (pulumi's goreleaser): static, no cgo user lookup, no gRPC tracing.
flags=(-trimpath -tags "osusergo,grpcnotrace"
  -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$version")
key=$(cat "$cli_module/go.mod" "$cli_module/go.sum" <(go version) <(printf '%s\n' "${flags[@]}") | sha256sum | cut -c1-16)
built="$cache/pulumi-cli/v$version-$key/pulumi"
if [ ! -x "$built" ]; then
  say "building the Pulumi CLI v$version from its Go module (a cold build takes several minutes) ..."
  started=$SECONDS
  mkdir -p "$(dirname "$built")"
  (cd "$cli_module" && CGO_ENABLED=0 go build "${flags[@]}" -o "$built.partial" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
  mv "$built.partial" "$built"
  say "built the Pulumi CLI v$version in $((SECONDS - started)) s"
fi
cmp -s "$built" "$bin/pulumi" || install -m 0755 "$built" "$bin/pulumi"
say "CLI: $("$bin/pulumi" version)"

# --- the language host's scripts, from the sdk/v3 module ----------------------------------------
sdk_dir=$(cd "$cli_module" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
install -m 0755 "$sdk_dir/python/cmd/pulumi-language-python-exec" "$bin/pulumi-language-python-exec"
install -m 0755 "$sdk_dir/python/dist/pulumi-resource-pulumi-python" "$bin/pulumi-resource-pulumi-python"

# --- what the proxy refuses: supplied files -------------------------------------------------------
missing=()
install_supplied() { # file in $supplied, destination
  if [ -x "$supplied/$1" ]; then
    cmp -s "$supplied/$1" "$2" && return
    mkdir -p "$(dirname "$2")"
    install -m 0755 "$supplied/$1" "$2"
    say "$1: installed from $supplied"
  elif [ ! -x "$2" ]; then
    missing+=("$1")
  fi
}
install_plugin() { # kind name version: through the CLI, which owns the plugin directory's layout
  local file="pulumi-$1-$2-v$3" installed="$home/plugins/$1-$2-v$3/pulumi-$1-$2"
  if [ -x "$supplied/$file" ]; then
    cmp -s "$supplied/$file" "$installed" && return
    PULUMI_HOME="$home" PULUMI_SKIP_UPDATE_CHECK=true "$bin/pulumi" plugin install "$1" "$2" "$3" \
      --file "$supplied/$file" --reinstall >/dev/null
    say "$file: installed from $supplied"
  elif [ ! -x "$installed" ]; then
    missing+=("$file")
  fi
}
install_supplied pulumi-language-python "$bin/pulumi-language-python"
install_plugin resource docker "$docker_version"
install_plugin resource random "$random_version"

if [ ${#missing[@]} -gt 0 ]; then
  say "missing: ${missing[*]}"
  say "the Go module proxy refuses their modules (see tools/pulumi-toolchain.sh); put the binaries"
  say "in $supplied under those names (e.g. from ~/.pulumi/plugins of a machine that can download them)"
  exit 4
fi
reason=$(complete_reason)
[ -z "$reason" ] || { say "incomplete: $reason"; exit 4; }
say "ready: eval \"\$(scripts/pulumi-toolchain --env)\""
