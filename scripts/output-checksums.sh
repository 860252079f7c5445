#!/usr/bin/env bash
# Checksums of every published output of a `bhi run`, to show a refactoring changed none of them.
# Usage: scripts/output-checksums.sh OUT_DIR   (the --out folder of a finished run)
# manifest.csv names the run (id, finish time), so it is left out; the evidence files are written
# unordered on purpose (speed), so their lines are sorted before hashing.
set -euo pipefail
cd "$1"
find -L . -type f ! -path './.publications/*' ! -name '*.duckdb*' ! -name '*.lock' ! -name manifest.csv \
    | LC_ALL=C sort | while read -r f; do
    case "$f" in
        ./claim_evidence/*) printf '%s  %s\n' "$(LC_ALL=C sort "$f" | sha256sum | cut -d' ' -f1)" "$f" ;;
        *) sha256sum "$f" ;;
    esac
done
