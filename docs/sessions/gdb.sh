#!/usr/bin/env bash
# The gdb walk-through of docs/debugging.md: `emu run -S -gdb tcp::PORT`
# in the background and gdb-multiarch running SESSION.gdb against it (the
# file's `target remote :1234` pointed at a free port). Prints gdb's output.
set -euo pipefail
session=${1:?usage: gdb.sh SESSION.gdb}
command -v emu > /dev/null || { echo "gdb.sh: emu is not on PATH (run it through docs/generate.py)" >&2; exit 2; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
script=$(mktemp)
log=$(mktemp)
trap 'rm -f "$script" "$log"; kill "$emu" 2>/dev/null || true' EXIT
sed "s/target remote :1234/target remote :$port/" "$session" > "$script"
emu run -q -S -gdb "tcp::$port" > /dev/null 2> "$log" &
emu=$!
for _ in $(seq 100); do      # until the stub says it listens
    grep -q listening "$log" && break
    sleep 0.05
done
gdb-multiarch -q -batch -x "$script" guest/build/kernel.elf 2>&1
wait "$emu" || true
