#!/bin/bash
# Per file: each migration linted as the change (--base HEAD~1), the files before it applied.
# Writes out/<label>/incremental/<project>/<file>.json.  Usage: lint-incremental.sh LABEL [XTASK_BINARY]
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "${CORPUS:-/work/corpus}"   # where gather.sh put projects/; results go to out/ there
label=$1; bin=${2:-$repo/target/lint/release/xtask}
tmp=$(mktemp -d)
for p in projects/*/; do
  name=$(basename "$p"); out=out/$label/incremental/$name; mkdir -p "$out"
  work=$tmp/$name; mkdir -p "$work/supabase/migrations"
  git -C "$work" init -q; git -C "$work" -c user.email=c@l -c user.name=c commit -q --allow-empty -m init
  for f in $(ls "$p/supabase/migrations" | sort); do
    cp "$p/supabase/migrations/$f" "$work/supabase/migrations/"
    git -C "$work" add -A; git -C "$work" -c user.email=c@l -c user.name=c commit -q -m "$f"
    (cd "$work" && "$bin" db --workdir "$work" lint --base HEAD~1 --format json) > "$out/$f.json" 2> "$out/$f.err"
  done
  echo "$name done"
done
rm -rf "$tmp"
