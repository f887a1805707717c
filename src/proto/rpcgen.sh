#!/bin/sh
# rpcgen.sh MODE INPUT.x OUTPUT - run rpcgen from the .x file's directory so
# the generated C includes "name.h" rather than a path into the source tree.
set -eu
mode=$1 in=$2 out=$3
outdir=$(cd "$(dirname "$out")" && pwd)
outabs="$outdir/$(basename "$out")"
cd "$(dirname "$in")"
rm -f "$outabs"
exec rpcgen "$mode" -o "$outabs" "$(basename "$in")"
