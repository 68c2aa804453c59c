#!/usr/bin/env bash
# Unpacks the upstream sources that the parity tests run unmodified
# (openai/whisper's audio.py, tritonclient, Triton's protos) into DEST
# (default: build/upstream). Each comes from a local git mirror when
# NPUK_MIRROR_DIR holds one (<dir>/<owner>+<name>/repo, a bare repository),
# else from a shallow clone of GitHub. Nothing of them is committed here; the
# tests that need them are skipped, saying so, when DEST lacks them.
#
#   scripts/upstream-sources.sh [DEST]
#   cmake --preset default -DNPUK_UPSTREAM_DIR=$PWD/build/upstream
set -euo pipefail
cd "$(dirname "$0")/.."
dest=$(realpath -m "${1:-build/upstream}")
mkdir -p "$dest"

repos=(openai/whisper triton-inference-server/client triton-inference-server/common)
for repo in "${repos[@]}"; do
  name=${repo//\//+}
  out="$dest/$name"
  if [ -d "$out" ] && [ -n "$(ls -A "$out")" ]; then
    echo "upstream-sources: $repo already in $out"
    continue
  fi
  mirror="${NPUK_MIRROR_DIR:-}/$name/repo"
  if [ -n "${NPUK_MIRROR_DIR:-}" ] && [ -d "$mirror" ]; then
    mkdir -p "$out"
    # A mirror may lack its largest blobs; export file by file and name what
    # is missing rather than failing on the first absent object.
    missing=0
    while IFS=$'\t' read -r meta path; do
      set -- $meta
      [ "$2" = blob ] || continue
      mkdir -p "$out/$(dirname "$path")"
      if ! git --git-dir="$mirror" cat-file blob "$3" >"$out/$path" 2>/dev/null; then
        rm -f "$out/$path"; missing=$((missing + 1))
      fi
    done < <(git --git-dir="$mirror" ls-tree -r HEAD)
    [ "$missing" -eq 0 ] || echo "upstream-sources: $repo: $missing files absent from the mirror" >&2
    echo "upstream-sources: $repo $(git --git-dir="$mirror" rev-parse --short HEAD) from $mirror"
  elif git clone -q --depth 1 "https://github.com/$repo" "$out" 2>/dev/null; then
    echo "upstream-sources: $repo $(git -C "$out" rev-parse --short HEAD) from GitHub"
  else
    rm -rf "$out"
    echo "upstream-sources: $repo unavailable (no mirror in NPUK_MIRROR_DIR, GitHub unreachable);" \
         "its parity tests will be skipped" >&2
  fi
done
