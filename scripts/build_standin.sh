#!/usr/bin/env bash
# Builds the TEST-ONLY variant of the shim: the same swift_bridge/Sources compiled with the stand-in
# module named CoreML (swift_bridge/StandIn) on the import path, so `#if canImport(CoreML)` is true
# on Linux and the Core ML backend's logic can be tested. The stand-in executes no model and proves
# nothing about Core ML. Output: build/standin/libmacb_standin.so (dynamic Swift runtime; test use only).
# Usage: bash scripts/build_standin.sh   (needs swiftc on PATH or under /opt/swift/usr/bin)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname -s)" = Darwin ]; then
  echo "build_standin.sh: not needed on macOS (the real Core ML is there; tests marked mac use it)"
  exit 0
fi

swiftc="$(command -v swiftc || true)"
[ -n "$swiftc" ] || swiftc=/opt/swift/usr/bin/swiftc
[ -x "$swiftc" ] || { echo "build_standin.sh: no swiftc found" >&2; exit 1; }

out=build/standin
mkdir -p "$out/modules"
common=(-parse-as-library -swift-version 5 -module-cache-path "$out/module-cache")

# 1. The stand-in module CoreML, as a static library plus its .swiftmodule.
# Library evolution makes its enums non-frozen like Apple's (so `@unknown default` is meaningful);
# it warns that Foundation lacks it, which does not matter for a test module: warnings off here.
"$swiftc" "${common[@]}" -O -wmo -module-name CoreML -enable-library-evolution -suppress-warnings \
  -emit-library -static -emit-module -emit-module-path "$out/modules/CoreML.swiftmodule" \
  swift_bridge/StandIn/*.swift -o "$out/libCoreML.a"

# 2. The shim against it. MACB_STANDIN makes runtime facts report backend "coreml-standin".
"$swiftc" "${common[@]}" -O -wmo -module-name Macb -D MACB_STANDIN \
  -I swift_bridge/include -I "$out/modules" -emit-library \
  swift_bridge/Sources/*.swift "$out/libCoreML.a" -o "$out/libmacb_standin.so"

echo "build_standin.sh: built $out/libmacb_standin.so (test only: no real Core ML)"
