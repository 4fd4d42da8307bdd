#!/usr/bin/env bash
# Installs what Keepsake's build and tests need, skipping whatever is already there at
# the right version: the wasm32 target, trunk, wasm-bindgen-cli (the version in
# Cargo.lock), Debian's binaryen, chromium, chromium-driver and redis-server, and the
# pinned Python and JavaScript clients of the bridge tests.
# Sourced by scripts/run and scripts/test; safe to run again and again.
set -euo pipefail

TRUNK_VERSION="0.21.14"
# Debian's binaryen (wasm-opt 108) predates wasm-bindgen's externref table and writes it
# back as a funcref table, so the optimised client throws at start-up. Binaryen from the
# npm registry (same project, built to run on Node.js) handles it; Trunk.toml pins it.
BINARYEN_VERSION="132"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BINARYEN_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/keepsake/binaryen-$BINARYEN_VERSION"
# esbuild minifies wasm-bindgen's JS glue, which trunk leaves as written.
ESBUILD_VERSION="0.28.2"
ESBUILD_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/keepsake/esbuild-$ESBUILD_VERSION"
export PATH="$BINARYEN_DIR/node_modules/.bin:$ESBUILD_DIR/node_modules/.bin:$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_debian_packages() {
  local missing=()
  for pkg in binaryen brotli chromium chromium-driver redis-server; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "Debian packages present (binaryen, brotli, chromium, chromium-driver, redis-server)"
    return
  fi
  say "Installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_wasm_target() {
  if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "wasm32-unknown-unknown target present"
  else
    say "Adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
}

install_trunk() {
  if command -v trunk >/dev/null && [ "$(trunk --version 2>/dev/null)" = "trunk $TRUNK_VERSION" ]; then
    say "trunk $TRUNK_VERSION present"
  else
    say "Installing trunk $TRUNK_VERSION (takes several minutes)"
    cargo install trunk --version "$TRUNK_VERSION" --locked --quiet
  fi
}

install_wasm_bindgen() {
  local want
  want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")"
  if [ -z "$want" ]; then
    echo "cannot find wasm-bindgen in Cargo.lock" >&2
    exit 1
  fi
  if command -v wasm-bindgen >/dev/null && [ "$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $want" ] \
    && command -v wasm-bindgen-test-runner >/dev/null; then
    say "wasm-bindgen-cli $want present"
  else
    # Not --locked: the CLI's own lockfile pins a crate the registry no longer has.
    say "Installing wasm-bindgen-cli $want (matches Cargo.lock)"
    cargo install wasm-bindgen-cli --version "=$want" --force --quiet
  fi
  if ! grep -q "wasm_bindgen = \"$want\"" "$ROOT/Trunk.toml"; then
    echo "Trunk.toml's [tools] wasm_bindgen must be \"$want\" (Cargo.lock's wasm-bindgen)" >&2
    exit 1
  fi
}

# Installs the npm package $2 (name@version) into directory $1, unless its binary $3
# is there already and answers `--version` with $4.
install_npm_tool() {
  local dir="$1" package="$2" bin="$3" want="$4"
  if [ "$("$dir/node_modules/.bin/$bin" --version 2>/dev/null)" = "$want" ]; then
    say "$package present"
  else
    say "Installing $package (npm)"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "$package" >/dev/null
  fi
}

install_binaryen() {
  install_npm_tool "$BINARYEN_DIR" "binaryen@$BINARYEN_VERSION.0.0" wasm-opt \
    "wasm-opt version $BINARYEN_VERSION (version_$BINARYEN_VERSION)"
  if ! grep -q "wasm_opt = \"version_$BINARYEN_VERSION\"" "$ROOT/Trunk.toml"; then
    echo "Trunk.toml's [tools] wasm_opt must be \"version_$BINARYEN_VERSION\"" >&2
    exit 1
  fi
}

# twiggy sizes the client's wasm by item (scripts/client-sizes, which scripts/bench
# runs). Built from source, so only the scripts that need it install it.
TWIGGY_VERSION="0.7.0"
install_twiggy() {
  if command -v twiggy >/dev/null && [ "$(twiggy --version 2>/dev/null)" = "twiggy-opt $TWIGGY_VERSION" ]; then
    say "twiggy $TWIGGY_VERSION present"
  else
    say "Installing twiggy $TWIGGY_VERSION (takes a few minutes)"
    cargo install twiggy --version "$TWIGGY_VERSION" --locked --quiet
  fi
}

install_esbuild() {
  install_npm_tool "$ESBUILD_DIR" "esbuild@$ESBUILD_VERSION" esbuild "$ESBUILD_VERSION"
}

# The Python clients the bridge tests drive (gradio_client, the MCP SDK), pinned with
# every dependency in e2e/clients/requirements.txt, in a virtual environment named
# after that file's hash: a changed pin makes a new one, an unchanged one is reused.
install_python_clients() {
  local requirements="$ROOT/e2e/clients/requirements.txt" hash
  hash="$(sha256sum "$requirements" | cut -c1-16)"
  CLIENTS_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/keepsake/clients-$hash"
  export KEEPSAKE_CLIENTS_PYTHON="$CLIENTS_VENV/bin/python"
  if [ -f "$CLIENTS_VENV/.complete" ]; then
    say "Python clients present (gradio_client, mcp)"
    return
  fi
  say "Installing the Python clients (gradio_client, mcp) into $CLIENTS_VENV"
  rm -rf "$CLIENTS_VENV"
  python3 -m venv "$CLIENTS_VENV"
  "$CLIENTS_VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
  touch "$CLIENTS_VENV/.complete"
}

# Gradio's JavaScript client for the bridge tests, as e2e/clients/package-lock.json
# pins it, in a directory named after the lock's hash.
# Installs the npm packages pinned by $1/package-lock.json into a cache directory
# named $2-<hash of the package files>, once; sets NPM_DIR to it.
install_npm_dir() {
  local source="$1" hash
  hash="$(cat "$source/package.json" "$source/package-lock.json" | sha256sum | cut -c1-16)"
  NPM_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/keepsake/$2-$hash"
  if [ -f "$NPM_DIR/.complete" ]; then
    say "$3 present"
    return
  fi
  say "Installing $3 into $NPM_DIR"
  rm -rf "$NPM_DIR"
  mkdir -p "$NPM_DIR"
  cp "$source/package.json" "$source/package-lock.json" "$NPM_DIR/"
  npm ci --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error >/dev/null
  touch "$NPM_DIR/.complete"
}

install_js_clients() {
  install_npm_dir "$ROOT/e2e/clients" js-clients "The JavaScript client (@gradio/client)"
  export KEEPSAKE_JS_CLIENTS="$NPM_DIR"
}

# axe-core, which the browser tests run in each demo page (light and dark).
install_axe() {
  install_npm_dir "$ROOT/e2e/a11y" axe "axe-core"
  export KEEPSAKE_AXE="$NPM_DIR/node_modules/axe-core/axe.min.js"
}

# The benchmark's own tools, for scripts/bench only: wrk (a standard load tool, from
# Debian), and a pinned Gradio in a virtual environment named after its requirements'
# hash, for the side by side with Gradio.
install_valgrind() {
  if ! command -v valgrind >/dev/null; then
    say "Installing valgrind"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
  fi
}

install_bench_tools() {
  install_valgrind
  if ! command -v wrk >/dev/null; then
    say "Installing wrk"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  fi
  local requirements="$ROOT/backend/benches/gradio/requirements.txt" hash venv
  hash="$(sha256sum "$requirements" | cut -c1-16)"
  venv="${XDG_CACHE_HOME:-$HOME/.cache}/keepsake/gradio-$hash"
  export KEEPSAKE_GRADIO_PYTHON="$venv/bin/python"
  if [ -f "$venv/.complete" ]; then
    say "Gradio present (for the side by side)"
    return
  fi
  say "Installing Gradio (pinned, for the side by side) into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
  touch "$venv/.complete"
}

install_all() {
  install_debian_packages
  install_python_clients
  install_js_clients
  install_axe
  install_binaryen
  install_esbuild
  install_wasm_target
  install_trunk
  install_wasm_bindgen
}

build_client() {
  say "Building the client (trunk build --release --offline)"
  (cd "$ROOT" && trunk build --release --offline)
  # Trunk's minifier is off (Trunk.toml): its JS minifier cannot parse wasm-bindgen's
  # `export default` and warns on every build. esbuild minifies the JS glue (6.6 KB to
  # 5.0 KB of brotli) and the CSS instead. Trunk has already written each file's
  # Subresource Integrity hash into index.html, so the hash is swapped for the
  # minified file's.
  local asset before after
  for asset in "$ROOT"/frontend/dist/*.js "$ROOT"/frontend/dist/*.css; do
    [ -f "$asset" ] || continue
    before="sha384-$(openssl dgst -sha384 -binary "$asset" | base64 -w0)"
    grep -qF "$before" "$ROOT/frontend/dist/index.html" || {
      echo "index.html holds no integrity hash for $asset" >&2
      return 1
    }
    case "$asset" in
      *.js) esbuild --minify --format=esm --log-level=warning "$asset" --outfile="$asset.min" ;;
      *.css) esbuild --minify --log-level=warning "$asset" --outfile="$asset.min" ;;
    esac
    mv "$asset.min" "$asset"
    after="sha384-$(openssl dgst -sha384 -binary "$asset" | base64 -w0)"
    sed -i "s|$before|$after|" "$ROOT/frontend/dist/index.html"
  done
  # Trunk's names hash the files before esbuild (and, for the wasm, before other
  # steps of its own); the server caches hashed names as immutable, so a name must
  # change whenever the bytes do (a new esbuild, say): each name's hash is taken
  # again from the final bytes.
  local name renamed
  for asset in "$ROOT"/frontend/dist/*.js "$ROOT"/frontend/dist/*.css "$ROOT"/frontend/dist/*.wasm; do
    [ -f "$asset" ] || continue
    name=$(basename "$asset")
    renamed=$(sed -E "s/-[0-9a-f]{16}(_bg)?\./-$(sha256sum "$asset" | cut -c1-16)\1./" <<<"$name")
    if [ "$renamed" != "$name" ]; then
      mv "$asset" "$(dirname "$asset")/$renamed"
      sed -i "s|/$name|/$renamed|g" "$ROOT/frontend/dist/index.html"
    fi
  done
  # Precompressed copies: the server sends the brotli or gzip file to browsers that
  # accept it (tower-http's ServeDir), instead of compressing on every request or
  # sending the files uncompressed.
  local file
  for file in "$ROOT"/frontend/dist/*; do
    case "$file" in *.gz | *.br) continue ;; esac
    [ -f "$file" ] || continue
    gzip -9 -k -f -n "$file"
    brotli -q 11 -k -f "$file"
  done
  # The server crate embeds the client from backend/client (backend/build.rs), so a
  # binary built from it, or from the packaged crate, serves pages on its own.
  rm -rf "$ROOT/backend/client"
  cp -r "$ROOT/frontend/dist" "$ROOT/backend/client"
}

# A free loopback port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts a throw-away redis-server (no persistence) on loopback port $1 with its files
# in directory $2, prefixed by $3 (e.g. taskset), and waits until it answers.
start_redis() {
  ${3:-} redis-server --bind 127.0.0.1 --port "$1" --save "" --appendonly no --dir "$2" \
    --daemonize yes --pidfile "$2/redis.pid" --logfile "$2/redis.log"
  for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "redis-server on port $1 never answered" >&2; return 1
}

stop_redis() { kill "$(cat "$1/redis.pid" 2>/dev/null)" 2>/dev/null || true; }

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  install_all
fi
