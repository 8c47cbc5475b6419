#!/usr/bin/env bash
# Gathers the lint corpus: for each line of manifest.tsv (repository, commit, folder of
# migrations, file count), the folder's .sql files at that commit into
# $CORPUS/projects/<owner+name>/supabase/migrations. Only the manifest is kept in the
# repository, never the projects' SQL. Repositories come from bare mirrors in
# $MIRRORS/<owner+name>/repo when there (the session's fetch tool puts them in
# /work/.mirror), otherwise they are cloned from GitHub into $MIRRORS.
#   docs/corpus/gather.sh [CORPUS]        (default CORPUS: /work/corpus)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
corpus=${1:-/work/corpus}
mirrors=${MIRRORS:-/work/.mirror}
mkdir -p "$corpus/projects"
while IFS=$'\t' read -r repo commit dir count; do
  name=${repo/\//+}
  git_dir=$mirrors/$name/repo
  if [ ! -d "$git_dir" ]; then
    git clone -q --bare --filter=blob:none "https://github.com/$repo" "$git_dir"
  fi
  out=$corpus/projects/$name/supabase/migrations
  rm -rf "$corpus/projects/$name"; mkdir -p "$out"
  git --git-dir="$git_dir" ls-tree --name-only "$commit" "$dir/" | grep '\.sql$' | while read -r f; do
    git --git-dir="$git_dir" cat-file blob "$commit:$f" > "$out/$(basename "$f")"
  done
  got=$(find "$out" -name '*.sql' | wc -l)
  [ "$got" = "$count" ] || { echo "$repo: $got files, the manifest says $count" >&2; exit 1; }
  echo "$repo $commit: $got files"
done < "$here/manifest.tsv"
