#!/usr/bin/env bash
# Bootstrap, then build the seed's bridge recipe in a throwaway host namespace, ping
# across it, print what was built, and tear it all down.  Needs root, or --rootless
# (a normal user: the lab lives in a sandbox of its own, see README "Without root").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python scripts/demo.py "$@"
