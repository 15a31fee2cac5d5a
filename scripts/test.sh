#!/usr/bin/env bash
# Set up the product (scripts/setup.sh) plus what only the tests need: two test packages from apt
# (pocketsphinx-testdata's speech, sox), the dev extras (pytest, coremltools' test references, torch
# for the portable-runtime tests, ctranslate2 ...), the test-only stand-in shim; then run the
# default test suite. Extra arguments go to pytest. Slow suites: bash scripts/test.sh -m slow
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA_APT_PACKAGES="pocketsphinx-testdata sox" bash scripts/setup.sh

dev_extras() {  # the dev extra's requirements alone: installing ".[dev]" would rebuild the package
  local stamp=.venv/.mlx-audio-coreml-dev inputs
  inputs=$(cksum < pyproject.toml)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then echo "[test] dev extras: already installed"; return; fi
  echo "[test] dev extras ..."
  local t0=$SECONDS
  .venv/bin/python - > .venv/dev-requirements.txt <<'EOF'
try:
    import tomllib
except ImportError:  # Python 3.10: pip's own copy
    from pip._vendor import tomli as tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["dev"]))
EOF
  .venv/bin/python -m pip install -q -r .venv/dev-requirements.txt
  echo "$inputs" > "$stamp"
  echo "[test] dev extras: done in $((SECONDS - t0)) s"
}
dev_extras
bash scripts/fetch_models.sh base  # multilingual weights: translation, language detection and parity tests

[ -x /opt/swift/usr/bin/swiftc ] && export PATH="/opt/swift/usr/bin:$PATH"
if command -v swiftc >/dev/null 2>&1; then bash scripts/build_standin.sh; fi
export PYTHONFAULTHANDLER=1  # a native crash prints every thread's Python stack
exec .venv/bin/python -m pytest -q "$@"
