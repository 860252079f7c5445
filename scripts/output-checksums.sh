#!/usr/bin/env bash
# Checksums of every published output of a `bhi run`, to show a refactoring changed none of them.
# Usage: scripts/output-checksums.sh OUT_DIR   (the --out folder of a finished run)
# manifest.csv names the run (id, finish time), so it is left out.
# The evidence trail is no published file (it stays in the warehouse; `bhi evidence` and the close
# write it): each service month's `bhi evidence` file is written to a temporary folder and hashed
# with its lines sorted, listed as `evidence <YYYY-MM>`. Sorted, the hash equals that of the
# claim_evidence/<YYYY-MM>.csv an earlier version published (written unordered; still hashed sorted
# below when the folder is there), so the content can be compared with a run of a version from before.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${BHI_PYTHON:-$repo/.venv/bin/python}"
out="$(cd "$1" && pwd)"
cd "$out"
# (<out>/evidence/ holds files a user wrote with `bhi evidence`: no published output)
find -L . -type f ! -path './.publications/*' ! -path './evidence/*' ! -name '*.duckdb*' ! -name '*.lock' ! -name manifest.csv \
    | LC_ALL=C sort | while read -r f; do
    case "$f" in
        ./claim_evidence/*) printf '%s  %s\n' "$(LC_ALL=C sort "$f" | sha256sum | cut -d' ' -f1)" "$f" ;;
        *) sha256sum "$f" ;;
    esac
done
if [ -f warehouse.duckdb ]; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    (cd "$repo" && "$python" - "$out/warehouse.duckdb" "$tmp" <<'PY'
import sys
from pathlib import Path

import duckdb

from pipelines.outputs.exports import write_evidence_month

with duckdb.connect(sys.argv[1], read_only=True) as conn:
    months = conn.sql("select distinct strftime(service_month, '%Y-%m') from fct_claim_evidence order by 1").fetchall()
    for (month,) in months:
        write_evidence_month(conn, month, Path(sys.argv[2]) / f"{month}.csv")
PY
    )
    for f in "$tmp"/*.csv; do
        printf '%s  evidence %s\n' "$(LC_ALL=C sort "$f" | sha256sum | cut -d' ' -f1)" "$(basename "$f" .csv)"
    done
fi
