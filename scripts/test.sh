#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what the tests need on a fresh Debian
# machine, then runs every test. GPU kernels run on lavapipe (Vulkan on the CPU); no GPU needed.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

step() { printf '\n== %s\n' "$*"; }

# Mesa complains on every device creation when this is unset (headless CI).
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    XDG_RUNTIME_DIR=$(mktemp -d)
    chmod 700 "$XDG_RUNTIME_DIR"
    export XDG_RUNTIME_DIR
fi

step "system packages (lavapipe, Chromium)"
missing=()
ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 || missing+=(mesa-vulkan-drivers)
ldconfig -p | grep -q 'libvulkan.so.1' || missing+=(libvulkan1)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "ok"

step "Rust wasm32 target"
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
echo "ok"

step "Python packages (train/requirements.txt)"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r train/requirements.txt
echo "ok"

step "npm packages for the browser tests (web/package-lock.json: playwright-core, binaryen)"
command -v npm >/dev/null || { echo "npm is missing: install Node.js 18 or newer" >&2; exit 1; }
npm ci --prefix web --no-audit --no-fund --loglevel=error
echo "ok"

step "cargo test (GPU kernels vs their CPU twins; lavapipe when there is no GPU)"
cargo test --locked --all-targets
cargo test --locked -p xtask

step "library builds for wasm32 (nothing native-only in the engine)"
cargo build --locked --lib --target wasm32-unknown-unknown

step "pytest train/"
python3 -m pytest train/ -q -p no:cacheprovider

step "CPU comparison, smoke run: the tiny fixture through pix2seqd, ONNX Runtime and PyTorch"
python3 scripts/compare_cpu.py --smoke

step "browser: build the wasm, serve web/, drive the page in headless Chromium (Playwright)"
cargo xtask test-web

step "npm package for embedders: cargo xtask package, then npm pack into target/ (nothing is published)"
cargo xtask package --out target/npm-package
rm -f target/pix2seqd-*.tgz
npm pack ./target/npm-package --pack-destination target --json --loglevel=error >target/npm-pack.json
node -e '
const [pack] = JSON.parse(require("fs").readFileSync("target/npm-pack.json", "utf8"));
const files = pack.files.map((f) => f.path);
const missing = ["element.js", "worker.js", "pkg/pix2seqd.js", "pkg/pix2seqd_bg.wasm", "package.json"].filter((f) => !files.includes(f));
if (missing.length) {
  console.error(`the package lacks ${missing.join(", ")}; it holds ${files.join(", ")}`);
  process.exit(1);
}
console.log(`target/${pack.filename}: ${files.length} files, ${pack.size} bytes (${pack.unpackedSize} unpacked)`);
'
