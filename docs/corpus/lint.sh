#!/bin/bash
# Whole folder: every file of each project as one change. Writes out/<label>/whole/<project>.json
# Usage: lint.sh LABEL [XTASK_BINARY]   (default: the optimized xtask `db lint` runs)
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "${CORPUS:-/work/corpus}"   # where gather.sh put projects/; results go to out/ there
label=$1; bin=${2:-$repo/target/lint/release/xtask}
mkdir -p out/$label/whole
for p in projects/*/; do
  name=$(basename "$p")
  "$bin" db --workdir "$p" lint --format json > out/$label/whole/$name.json 2> out/$label/whole/$name.err
  echo "$name exit=$?"
done
