#!/usr/bin/env bash
# Builds every libFuzzer target (config, identity, pcap reader, report
# renderer, sbi decoder) with clang + ASan/UBSan and runs each for a while. Needs clang-19
# and libclang-rt-19-dev (scripts/install-deps.sh installs both).
#
#   scripts/fuzz.sh [SECONDS]          default 60 s per fuzzer
#   BUILD_DIR=build-fuzz PCAPS=../shared/pcaps scripts/fuzz.sh 300
#
# Seeds: every capture under PCAPS (default ../shared/pcaps, or $KAGAMI_PCAPS)
# no larger than 64 KiB, the size the fuzzers are capped at (-max_len), plus
# a few JSON reports for the renderer. The corpus grows in
# $BUILD_DIR/corpus/<fuzzer>; crashes land in $BUILD_DIR/artifacts/. Exit
# status is non-zero if any fuzzer found a crash, leak or sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_FUZZER=${1:-60}
BUILD_DIR=${BUILD_DIR:-build-fuzz}
PCAPS=${PCAPS:-${KAGAMI_PCAPS:-$(pwd)/../shared/pcaps}}
CLANG=${CLANG:-clang-19}
CLANGXX=${CLANGXX:-clang++-19}
JOBS=${JOBS:-2}

cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="$CLANG" -DCMAKE_CXX_COMPILER="$CLANGXX" \
  -DKAGAMI_FUZZ=ON -DKAGAMI_SANITIZE=ON >/dev/null
FUZZERS=(config_fuzz identity_fuzz pcap_reader_fuzz pcap_render_fuzz security_policy_fuzz n2_decode_fuzz sbi_fuzz policy_fuzz l7_policy_fuzz)
cmake --build "$BUILD_DIR" -j"$JOBS" --target "${FUZZERS[@]}"

for f in "${FUZZERS[@]}"; do mkdir -p "$BUILD_DIR/corpus/$f"; done
mkdir -p "$BUILD_DIR/artifacts"
# The seeds kept in the tree (tests/fuzz/corpus/<name>) start each corpus.
cp -n tests/fuzz/corpus/config/* "$BUILD_DIR/corpus/config_fuzz/"
cp -n tests/fuzz/corpus/identity/* "$BUILD_DIR/corpus/identity_fuzz/"
cp -n tests/fuzz/corpus/pcap/* "$BUILD_DIR/corpus/pcap_reader_fuzz/"
cp -n tests/fuzz/corpus/render/* "$BUILD_DIR/corpus/pcap_render_fuzz/"
cp -n tests/fuzz/corpus/security_policy/* "$BUILD_DIR/corpus/security_policy_fuzz/"

cp -n tests/fuzz/corpus/n2/* "$BUILD_DIR/corpus/n2_decode_fuzz/"
# n2_decode_fuzz: every NGAP message of the shared captures, one seed each
# (tshark's ngap_raw bytes; needs tshark, skipped without it).
if [ -d "$PCAPS" ] && command -v tshark >/dev/null; then
  for c in "$PCAPS"/*.pcap "$PCAPS"/*.pcapng; do
    tshark -n -r "$c" -Y ngap -T json -x 2>/dev/null | python3 -c '
import json, sys, hashlib
out = sys.argv[1]
def raws(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "ngap_raw" and isinstance(v, list) and v and isinstance(v[0], str): yield v[0]
            else: yield from raws(v)
    elif isinstance(o, list):
        for x in o: yield from raws(x)
try: frames = json.load(sys.stdin)
except ValueError: frames = []
for f in frames:
    for h in raws(f):
        b = bytes.fromhex(h)
        open(out + "/cap-" + hashlib.sha1(b).hexdigest()[:16], "wb").write(b)
' "$BUILD_DIR/corpus/n2_decode_fuzz" || true
    # ... and every PFCP message (the 5G context join's PFCP reader).
    tshark -n -r "$c" -Y pfcp -T fields -e udp.payload 2>/dev/null | while read -r h; do
      [ -n "$h" ] && printf '%s' "$h" | xxd -r -p >"$BUILD_DIR/corpus/n2_decode_fuzz/pfcp-$(printf '%s' "$h" | sha1sum | cut -c1-16)"
    done || true
  done
fi

cp -n tests/fuzz/corpus/sbi/* "$BUILD_DIR/corpus/sbi_fuzz/"
# sbi_fuzz: the TCP payloads of the shared SBI captures, per connection
# (tshark; the ports as truth.sh decodes them).
if [ -d "$PCAPS" ] && command -v tshark >/dev/null; then
  for c in ndpi_http2_free5gc_namf.pcapng telekom_free5gc.pcap open5gs_5g-roaming-lbo.pcapng \
           open5gs_testregistration.pcapng 5greplay_oai.pcap; do
    [ -f "$PCAPS/$c" ] && python3 tests/fuzz/make_sbi_seeds.py "$BUILD_DIR/corpus/sbi_fuzz" "$PCAPS/$c" || true
  done
fi

cp -n tests/fuzz/corpus/policy/* "$BUILD_DIR/corpus/policy_fuzz/"
cp -n tests/fuzz/corpus/l7_policy/* "$BUILD_DIR/corpus/l7_policy_fuzz/"
if [ -d "$PCAPS" ]; then
  find "$PCAPS" -maxdepth 1 \( -name '*.pcap' -o -name '*.pcapng' \) -size -65537c \
    -exec cp -n {} "$BUILD_DIR/corpus/pcap_reader_fuzz/" \;
else
  echo "fuzz.sh: no captures at $PCAPS; pcap_reader_fuzz starts from the seeds in tests/fuzz/corpus/pcap" >&2
fi
cat >"$BUILD_DIR/corpus/pcap_render_fuzz/report.json" <<'JSON'
{"capture":"x.pcap","link_type":"EN10MB","total_frames":3,"replayed_frames":2,"skipped":{"non_ip_payload":1},
 "duration_ms":0.5,"gtpu":{"packets":2,"by_teid":{"0x00000001":{"packets":2,"frame_bytes":200,
 "by_message_type":{"0xff":{"name":"T-PDU","count":2}}}}},"pfcp":{"messages":1,"by_msg_type":{"50":{"count":1}}}}
JSON

status=0
for f in "${FUZZERS[@]}"; do
  echo "== $f for ${SECONDS_PER_FUZZER}s"
  # -rss_limit_mb: ASan's shadow plus libpcap's 256 KiB record buffers stay
  # far below this; a real leak or blow-up does not.
  if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      "$BUILD_DIR/tests/fuzz/$f" -max_total_time="$SECONDS_PER_FUZZER" -max_len=65536 -rss_limit_mb=2048 \
      -artifact_prefix="$BUILD_DIR/artifacts/$f-" -print_final_stats=1 "$BUILD_DIR/corpus/$f" 2>"$BUILD_DIR/$f.log"; then
    echo "!! $f failed; see $BUILD_DIR/$f.log and $BUILD_DIR/artifacts/" >&2
    status=1
  fi
  grep -E "^(stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)|^#[0-9]+.*DONE" "$BUILD_DIR/$f.log" || true
done
exit $status
