#!/usr/bin/env bash
# Builds every strategy, the examples and the test guests to WebAssembly components, or,
# given strategy folders, just those (strategies/build.sh examples/hello). A folder is a
# Rust crate (Cargo.toml), a Python strategy (app.py) or a JavaScript one (strategy.js).
#
#   strategies/<name>.wasm      shipped strategies and the examples, as components
#   target/guests/<name>.wasm   test guests, as components
#   target/guests/core/*.wasm   the Rust test guests as core modules (contract embedded)
#
# Installs what it needs on a fresh machine: the wasm32 standard library comes from
# rustup when it can download it, otherwise from Debian's rustc-web and rust-web-src,
# built with -Zbuild-std (rustup cannot reach its servers on our machines); Python
# strategies are built by componentize-py from PyPI, JavaScript ones by componentize-js
# from npm, both at pinned versions and installed under target/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

strategies=(hedger grid cross-asset self-trade hello)
guests=(counter-v1 counter-v2 counter-bad misbehave wrong-version wrong-signature wrong-tape wrong-packed scripted hostile contract-0-1-0 contract-0-1-2)
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

# Python and JavaScript: the toolchains, pinned, in target/. Both build against the world
# `plugin-with-standing`, so the strategy hears of its halts and resumes.
componentize_py_version=0.25.1
componentize_js_version=0.23.0
componentize_py="$root/target/componentize-py/bin/componentize-py"
js_tools="$root/target/componentize-js"
need_componentize_py() {
    if [ -x "$componentize_py" ] && [ "$("$componentize_py" --version 2>/dev/null)" = "componentize-py $componentize_py_version" ]; then
        return
    fi
    echo "build.sh: installing componentize-py $componentize_py_version (PyPI) in target/componentize-py"
    if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
        $sudo apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    rm -rf "$root/target/componentize-py"
    python3 -m venv "$root/target/componentize-py"
    "$root/target/componentize-py/bin/pip" install -q --disable-pip-version-check "componentize-py==$componentize_py_version"
}
need_componentize_js() {
    local installed="$js_tools/node_modules/@bytecodealliance/componentize-js/package.json"
    if ! grep -q "\"version\": \"$componentize_js_version\"" "$installed" 2>/dev/null; then
        if ! command -v npm >/dev/null; then
            $sudo apt-get update -qq
            $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
        fi
        echo "build.sh: installing componentize-js $componentize_js_version (npm) in target/componentize-js"
        mkdir -p "$js_tools"
        npm install --prefix "$js_tools" --no-audit --no-fund --silent "@bytecodealliance/componentize-js@$componentize_js_version"
    fi
    cp "$root/strategies/componentize-js.mjs" "$js_tools/"
}
# build_python <folder with app.py> <out.wasm>
build_python() {
    need_componentize_py
    (cd "$1" && "$componentize_py" -d "$root/wit" -w plugin-with-standing componentize -p . app -o "$2")
}
# build_js <folder with strategy.js> <out.wasm>
build_js() {
    need_componentize_js
    node "$js_tools/componentize-js.mjs" "$1/strategy.js" "$root/wit" plugin-with-standing "$2"
}

if [ $# -gt 0 ]; then
    # One strategy (or a few) at a time: `strategies/build.sh path/to/folder...`, inside
    # this workspace or a project of its own (`runtime new`). Rust crates use this
    # workspace's target folder, so the wasm32 standard library built once is reused.
    for dir in "$@"; do
        dir=$(cd "$dir" && pwd)
        if [ -f "$dir/app.py" ]; then
            name=$(basename "$dir")
            echo "build.sh: building $name (Python)"
            build_python "$dir" "$root/strategies/$name.wasm"
        elif [ -f "$dir/strategy.js" ]; then
            name=$(basename "$dir")
            echo "build.sh: building $name (JavaScript)"
            build_js "$dir" "$root/strategies/$name.wasm"
        elif [ -f "$dir/Cargo.toml" ]; then
            manifest="$dir/Cargo.toml"
            name=$(sed -n 's/^name *= *"\([A-Za-z0-9_-]*\)".*/\1/p' "$manifest" | head -1)
            [ -n "$name" ] || { echo "build.sh: $manifest names no package" >&2; exit 1; }
            echo "build.sh: building $name"
            "$host_cargo" build --release -p componentize
            CARGO_TARGET_DIR="$root/target" wasm_build --manifest-path "$manifest"
            "$root/target/release/componentize" "$root/target/$target/wasm/${name//-/_}.wasm" "$root/strategies/$name.wasm"
        else
            echo "build.sh: $dir has no Cargo.toml, app.py or strategy.js: not a strategy" >&2
            exit 1
        fi
        echo "build.sh: strategies/$name.wasm"
    done
    exit 0
fi

packages=()
for p in "${strategies[@]}" "${guests[@]}"; do packages+=(-p "$p"); done
echo "build.sh: building ${#packages[@]} wasm crates"
wasm_build "${packages[@]}"

echo "build.sh: building the componentizer"
"$host_cargo" build --release -p componentize
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

echo "build.sh: building the Python and JavaScript examples and test guests"
build_python "$root/examples/hello-python" "$root/strategies/hello-python.wasm"
build_js "$root/examples/hello-js" "$root/strategies/hello-js.wasm"
build_python "$root/tests/guests/wasi-python" "$root/target/guests/wasi-python.wasm"
build_js "$root/tests/guests/wasi-js" "$root/target/guests/wasi-js.wasm"
echo "build.sh: components in strategies/ and target/guests/"
