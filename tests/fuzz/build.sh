#!/bin/sh
# tests/fuzz/build.sh [OUTDIR] - build the libFuzzer target fuzz_xdr with
# clang, ASan and UBSan, straight from the sources (no meson involved).
#
# Needs: clang and libclang-rt-14-dev (the libFuzzer runtime), rpcgen,
# libtirpc-dev, libuv1-dev.  On Debian 12:
#     apt-get install -y clang libclang-rt-14-dev
#
# Run it (from the project root; OUTDIR defaults to ./build-fuzz):
#     tests/fuzz/build.sh /tmp/fz
#     mkdir -p /tmp/fz/work
#     /tmp/fz/fuzz_xdr -max_len=4096 -max_total_time=600 -jobs=4 -workers=4 \
#         /tmp/fz/work tests/fuzz/corpus
# Fold what it found back into the saved corpus (minimised; keep it small):
#     mkdir -p /tmp/fz/min
#     /tmp/fz/fuzz_xdr -merge=1 /tmp/fz/min tests/fuzz/corpus /tmp/fz/work
# A crash leaves crash-<sha1> in the current directory: reproduce it with
#     /tmp/fz/fuzz_xdr crash-<sha1>
# and, once the bug is fixed, keep it in tests/fuzz/corpus/ so fuzz_replay
# (the unit test built by tests/fuzz/meson.build) re-runs it every time.
#
# Line coverage of a corpus: COVERAGE=1 builds OUTDIR/fuzz_replay_cov
# (replay.c, clang source-based coverage, no libFuzzer) instead:
#     COVERAGE=1 tests/fuzz/build.sh /tmp/fzcov
#     LLVM_PROFILE_FILE=/tmp/fzcov/c.profraw /tmp/fzcov/fuzz_replay_cov tests/fuzz/corpus
#     llvm-profdata merge -o /tmp/fzcov/c.profdata /tmp/fzcov/c.profraw
#     llvm-cov report /tmp/fzcov/fuzz_replay_cov -instr-profile=/tmp/fzcov/c.profdata
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-build-fuzz}
mkdir -p "$out/gen" "$out/obj"
out=$(cd "$out" && pwd)

CC=${CC:-clang}
SAN="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
target=fuzz_xdr
extra=
if [ "${COVERAGE:-0}" = 1 ]; then
	SAN="-fprofile-instr-generate -fcoverage-mapping"
	target=fuzz_replay_cov
	extra=tests/fuzz/replay.c
fi
CFLAGS="-g -O1 -std=c17 -D_GNU_SOURCE $(pkg-config --cflags libtirpc libuv)"
# Ours first: src/rpc/rpc.h must shadow libtirpc's <rpc/rpc.h>.
INC="-I$src/src -I$src/src/common -I$out/gen"
LIBS="$(pkg-config --libs libtirpc libuv)"

# The XDR routines, generated exactly as src/proto/meson.build does.
for p in rpcmsg pmap nlm nsm nfs3 mount; do
	"$src/src/proto/rpcgen.sh" -h "$src/src/proto/$p.x" "$out/gen/$p.h"
	"$src/src/proto/rpcgen.sh" -c "$src/src/proto/$p.x" "$out/gen/${p}_xdr.c"
done

objs=
for p in rpcmsg pmap nlm nsm nfs3 mount; do
	# rpcgen output is not ours to tidy: no warnings, as in the meson build.
	$CC $SAN $INC $CFLAGS -w -c "$out/gen/${p}_xdr.c" -o "$out/obj/${p}_xdr.o"
	objs="$objs $out/obj/${p}_xdr.o"
done
for f in $extra tests/fuzz/fuzz_xdr.c src/nlm/nlm_xdr.c src/nfs/fh.c src/nsm/clist.c \
	 src/common/log.c; do
	# Named after the path: src/nlm/nlm_xdr.c is not the generated nlm_xdr.c.
	o=$(echo "$f" | tr / _)
	o="$out/obj/${o%.c}.o"
	$CC $SAN $INC $CFLAGS -Wall -Wextra -Wno-unused-parameter -c "$src/$f" -o "$o"
	objs="$objs $o"
done
# shellcheck disable=SC2086 # word splitting of the lists is intended
$CC $SAN $objs $LIBS -o "$out/$target"
echo "built $out/$target"
