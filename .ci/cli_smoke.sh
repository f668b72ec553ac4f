#!/usr/bin/env bash
# Runs the command-line tool as a user would and checks its exit codes:
#   .ci/cli_smoke.sh PATH/TO/iqdb-persist
set -euo pipefail
tool=$1
work=$(mktemp -d)
publisher=
trap '[[ -z $publisher ]] || kill "$publisher" 2>/dev/null; rm -rf "$work"' EXIT

expect_exit() {  # expect_exit CODE COMMAND...
  local want=$1 got=0
  shift
  "$@" >"$work/out" 2>&1 || got=$?
  if [[ $got -ne $want ]]; then
    echo "FAIL: '$*' exited $got, expected $want"; cat "$work/out"; exit 1
  fi
}

"$tool" demo --vectors 5000 --dim 16 --dir "$work/demo" >/dev/null
snapshot="$work/demo/demo.iqdb"
[[ -f "$snapshot" ]] || { echo "FAIL: demo --dir left no snapshot"; exit 1; }

expect_exit 0 "$tool" inspect "$snapshot"
grep -q vectors "$work/out" || { echo "FAIL: inspect shows no 'vectors' section"; exit 1; }
expect_exit 0 "$tool" inspect --json "$snapshot"
cp "$work/out" "$work/header.json"
python3 -m json.tool "$work/header.json" >/dev/null || { echo "FAIL: inspect --json is not JSON"; exit 1; }
expect_exit 0 "$tool" verify "$snapshot"

# Flip one byte in the middle of the 'vectors' section: verify names it.
offset=$(python3 -c 'import json,sys; h=json.load(open(sys.argv[1])); s=[x for x in h["sections"] if x["name"]=="vectors"][0]; print(s["offset"]+s["stored_length"]//2)' "$work/header.json")
cp "$snapshot" "$work/damaged.iqdb"
chmod u+w "$work/damaged.iqdb"  # snapshots are written read-only (0444)
python3 - "$work/damaged.iqdb" "$offset" <<'PY'
import sys
path, offset = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(offset); b = f.read(1); f.seek(offset); f.write(bytes([b[0] ^ 0x10]))
PY
expect_exit 1 "$tool" verify "$work/damaged.iqdb"
grep -q "ChecksumMismatch.*'vectors'" "$work/out" || { echo "FAIL: verify did not name 'vectors'"; cat "$work/out"; exit 1; }

# compact: zstd in place (the sorted ids shrink), inspect shows it, verify passes; through lz4
# (the `rewrite` alias) to another file, then back to none: the demo's original bytes.
compacted="$work/compacted.iqdb"
cp "$snapshot" "$compacted"
[[ ! -w "$snapshot" || $(id -u) -eq 0 ]] || { echo "FAIL: the snapshot is writable"; exit 1; }
expect_exit 0 "$tool" compact "$compacted" --compression zstd --level 3
grep -q "ids .* none -> zstd" "$work/out" || { echo "FAIL: compact did not compress 'ids'"; cat "$work/out"; exit 1; }
expect_exit 0 "$tool" inspect "$compacted"
grep -q "^total: 360008 logical bytes" "$work/out" || { echo "FAIL: inspect shows no total line"; cat "$work/out"; exit 1; }
expect_exit 0 "$tool" inspect --json "$compacted"
python3 - "$work/out" "$(stat -c %s "$snapshot")" <<'PY' || { echo "FAIL: inspect --json after compact"; cat "$work/out"; exit 1; }
import json, sys
header, original_size = json.load(open(sys.argv[1])), int(sys.argv[2])
ids = [s for s in header["sections"] if s["name"] == "ids"][0]
assert ids["compression"] == "zstd" and ids["compression_ratio"] > 1.5, ids
assert ids["chunk_count"] == 1 and ids["chunk_size"] == 1 << 20, ids
assert header["file_size"] < original_size and header["total_logical_length"] == 360008, header
PY
expect_exit 0 "$tool" verify "$compacted"
expect_exit 0 "$tool" rewrite "$compacted" --compression lz4 --output "$work/lz4.iqdb"
grep -q "ids .* zstd -> lz4" "$work/out" || { echo "FAIL: rewrite to lz4"; cat "$work/out"; exit 1; }
expect_exit 0 "$tool" verify "$work/lz4.iqdb"
expect_exit 0 "$tool" compact "$work/lz4.iqdb" --compression none --output "$work/raw.iqdb"
cmp -s "$snapshot" "$work/raw.iqdb" || { echo "FAIL: compact back to none changed the file"; exit 1; }
expect_exit 2 "$tool" compact "$work/raw.iqdb" --sections ids,nope
grep -q "InvalidConfig.*'nope'" "$work/out" || { echo "FAIL: compact --sections with a typo"; cat "$work/out"; exit 1; }
expect_exit 1 "$tool" compact "$work/damaged.iqdb" --output "$work/never.iqdb"
[[ ! -e "$work/never.iqdb" ]] || { echo "FAIL: compact copied a damaged file"; exit 1; }

echo "not a snapshot" >"$work/foreign"
expect_exit 1 "$tool" inspect "$work/foreign"
grep -q BadMagic "$work/out" || { echo "FAIL: foreign file not reported as BadMagic"; exit 1; }
expect_exit 3 "$tool" verify "$work/missing.iqdb"
grep -q NotFound "$work/out" || { echo "FAIL: missing file not reported as NotFound"; exit 1; }
# A FIFO (or a FIFO named like a log segment) is refused at once, never waited on.
mkfifo "$work/fifo.iqdb" "$work/demo/demo.iqdb.wal-00000000000000ff"
for command in inspect verify wal; do
  expect_exit 3 timeout 20 "$tool" "$command" "$work/fifo.iqdb"
  grep -q "not a regular file" "$work/out" || { echo "FAIL: $command on a FIFO"; cat "$work/out"; exit 1; }
done
expect_exit 3 timeout 20 "$tool" compact "$work/fifo.iqdb" --compression zstd
expect_exit 3 timeout 20 "$tool" wal "$snapshot"
grep -q "FIFO" "$work/out" || { echo "FAIL: wal on a FIFO segment"; cat "$work/out"; exit 1; }
rm "$work/demo/demo.iqdb.wal-00000000000000ff"
# Logs written from docs/FORMAT.md by an independent writer.
python3 "$(dirname "$0")/write_test_wal.py" "$work"
expect_exit 0 "$tool" wal "$work/crashed.iqdb"
grep -q "TolerateCorruptedTail  opens at LSN 3" "$work/out" || { echo "FAIL: wal on a crashed log"; cat "$work/out"; exit 1; }
expect_exit 1 "$tool" wal "$work/damaged.iqdb"
grep -q "CORRUPTION at offset" "$work/out" || { echo "FAIL: wal did not show the corruption"; cat "$work/out"; exit 1; }
grep -q "SkipCorruptedRecords   opens at LSN 8" "$work/out" || { echo "FAIL: wal skip mode"; cat "$work/out"; exit 1; }
# A segment a load moved aside is read on its own when named.
cp "$work/damaged.iqdb.wal-0000000000000001" "$work/damaged.iqdb.wal-0000000000000001.damaged"
expect_exit 1 "$tool" wal "$work/damaged.iqdb.wal-0000000000000001.damaged"
grep -q "no load replays it" "$work/out" || { echo "FAIL: wal on a lone segment"; cat "$work/out"; exit 1; }
# follow: a replica of the demo's logged database, one JSON line a second, at the snapshot's LSN.
expect_exit 0 "$tool" follow "$work/demo/wal-demo.iqdb" --seconds 1 --json
python3 - "$work/out" <<'PY' || { echo "FAIL: follow --json"; cat "$work/out"; exit 1; }
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
line = json.loads(lines[0])
assert line["lsn"] > 0 and line["lsn"] == line["writer_lsn"] and line["lag_records"] == 0, line
PY
expect_exit 3 "$tool" follow "$work/missing.iqdb" --seconds 1
grep -q NotFound "$work/out" || { echo "FAIL: follow on a missing database"; cat "$work/out"; exit 1; }
# publish / attach / unpublish: the zstd-compacted snapshot served, decoded, from shared memory
# for a second, attached and verified meanwhile; once publish withdraws, nothing is left.
name="cli-smoke-$$-$RANDOM"
"$tool" publish "$compacted" --name "$name" --seconds 1 --json >"$work/publish.out" 2>&1 &
publisher=$!
for _ in $(seq 100); do [[ -s "$work/publish.out" ]] && break; sleep 0.1; done
expect_exit 0 "$tool" attach "$name" --json --verify
python3 - "$work/out" "$name" "$work/header.json" <<'PY' || { echo "FAIL: attach --json --verify"; cat "$work/out"; exit 1; }
import json, sys
attached, name, source = json.load(open(sys.argv[1])), sys.argv[2], json.load(open(sys.argv[3]))
assert attached["generation"] == 1 and attached["object"] == f"iqdb.{name}.current", attached
assert attached["verified"] and attached["content_xxh3"] == source["content_xxh3"], attached
assert [s["name"] for s in attached["sections"]] == [s["name"] for s in source["sections"]], attached
assert all(s["compression"] == "none" for s in attached["sections"]), attached
PY
status=0
wait "$publisher" || status=$?
publisher=
[[ $status -eq 0 ]] || { echo "FAIL: publish --seconds 1 exited $status"; cat "$work/publish.out"; exit 1; }
python3 - "$work/publish.out" <<'PY' || { echo "FAIL: publish --json"; cat "$work/publish.out"; exit 1; }
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1])]
assert len(lines) == 1 and lines[0]["generation"] == 1 and lines[0]["image_bytes"] > 0, lines
PY
expect_exit 3 "$tool" attach "$name"
grep -q NotFound "$work/out" || { echo "FAIL: attach after publish withdrew"; cat "$work/out"; exit 1; }
if compgen -G "/dev/shm/iqdb.$name*" >/dev/null; then echo "FAIL: publish left objects in /dev/shm"; exit 1; fi
expect_exit 0 "$tool" unpublish "$name"
grep -q "^removed 0 objects" "$work/out" || { echo "FAIL: unpublish of nothing"; cat "$work/out"; exit 1; }
# A short crash-consistency run on this file system: it passes and removes its database.
expect_exit 0 "$tool" torture --seconds 5 --dir "$work/torture"
grep -q "^PASS" "$work/out" || { echo "FAIL: torture did not pass"; cat "$work/out"; exit 1; }
[[ ! -e "$work/torture/iqdb-torture" ]] || { echo "FAIL: torture left its database behind"; exit 1; }
echo "cli smoke: every check passed"
