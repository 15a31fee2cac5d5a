#!/usr/bin/env bash
# Set up (scripts/setup.sh), build the test-only stand-in shim, and run the default test suite.
# Extra arguments go to pytest. Slow suites: bash scripts/test.sh -m slow
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -x /opt/swift/usr/bin/swiftc ] && export PATH="/opt/swift/usr/bin:$PATH"
if command -v swiftc >/dev/null 2>&1; then bash scripts/build_standin.sh; fi
export PYTHONFAULTHANDLER=1  # a native crash prints every thread's Python stack
exec .venv/bin/python -m pytest -q "$@"
