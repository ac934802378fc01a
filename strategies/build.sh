#!/usr/bin/env bash
# Builds every strategy, the example and the test guests to WebAssembly components, or,
# given crate folders, just those (strategies/build.sh examples/hello).
#
#   strategies/<name>.wasm      shipped strategies and the example, as components
#   target/guests/<name>.wasm   test guests, as components
#   target/guests/core/*.wasm   the same test guests as core modules (contract embedded)
#
# Installs what it needs on a fresh machine: the wasm32 standard library comes from
# rustup when it can download it, otherwise from Debian's rustc-web and rust-web-src,
# built with -Zbuild-std (rustup cannot reach its servers on our machines).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

strategies=(hedger grid cross-asset self-trade hello)
guests=(counter-v1 counter-v2 counter-bad misbehave wrong-version wrong-signature scripted hostile contract-0-1-0)
target=wasm32-unknown-unknown
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"

host_cargo=$(command -v cargo)
if rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    wasm_build() { "$host_cargo" build --profile wasm --target "$target" "$@"; }
else
    if [ ! -d /usr/lib/rustlib/src/rust/library ] || [ ! -x /usr/bin/cargo ]; then
        echo "build.sh: installing Debian's rustc-web, cargo-web and rust-web-src for the wasm32 standard library"
        $sudo apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src >/dev/null
    fi
    # Debian's rustc has no linker for wasm; rustup's rust-lld is the one that works.
    lld=$(ls "$(rustc --print sysroot)"/lib/rustlib/*/bin/rust-lld 2>/dev/null | head -1 || true)
    [ -n "$lld" ] || lld=$(ls ~/.rustup/toolchains/*/lib/rustlib/*/bin/rust-lld 2>/dev/null | head -1 || true)
    [ -n "$lld" ] || { echo "build.sh: no rust-lld found in the rustup toolchain" >&2; exit 1; }
    wasm_build() {
        PATH=/usr/bin:$PATH RUSTC_BOOTSTRAP=1 CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$lld" \
            /usr/bin/cargo build --profile wasm -Zbuild-std=std,panic_abort --target "$target" "$@"
    }
fi

if [ $# -gt 0 ]; then
    # One strategy crate (or a few) at a time: `strategies/build.sh path/to/crate...`,
    # inside this workspace or a project of its own (`runtime new`). The target folder is
    # this workspace's, so the wasm32 standard library built once is reused.
    echo "build.sh: building the componentizer"
    "$host_cargo" build --release -p runtime --bin componentize
    export CARGO_TARGET_DIR="$root/target"
    for dir in "$@"; do
        manifest="$(cd "$dir" && pwd)/Cargo.toml"
        [ -f "$manifest" ] || { echo "build.sh: $dir has no Cargo.toml" >&2; exit 1; }
        name=$(sed -n 's/^name *= *"\([A-Za-z0-9_-]*\)".*/\1/p' "$manifest" | head -1)
        [ -n "$name" ] || { echo "build.sh: $manifest names no package" >&2; exit 1; }
        echo "build.sh: building $name"
        wasm_build --manifest-path "$manifest"
        "$root/target/release/componentize" "$root/target/$target/wasm/${name//-/_}.wasm" "$root/strategies/$name.wasm"
        echo "build.sh: strategies/$name.wasm"
    done
    exit 0
fi

packages=()
for p in "${strategies[@]}" "${guests[@]}"; do packages+=(-p "$p"); done
echo "build.sh: building ${#packages[@]} wasm crates"
wasm_build "${packages[@]}"

echo "build.sh: building the componentizer"
"$host_cargo" build --release -p runtime --bin componentize
componentize="$root/target/release/componentize"

out="$root/target/$target/wasm"
mkdir -p "$root/target/guests/core"
for p in "${strategies[@]}"; do
    "$componentize" "$out/${p//-/_}.wasm" "$root/strategies/$p.wasm"
done
for p in "${guests[@]}"; do
    cp "$out/${p//-/_}.wasm" "$root/target/guests/core/$p.wasm"
    "$componentize" "$out/${p//-/_}.wasm" "$root/target/guests/$p.wasm"
done
echo "build.sh: components in strategies/ and target/guests/"
