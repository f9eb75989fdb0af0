#!/usr/bin/env bash
# Bootstrap, then run the unit and the integration tests.  Integration tests need
# root and skip, saying so, without it.  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m pytest tests "$@"
