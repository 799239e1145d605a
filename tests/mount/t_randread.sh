#!/bin/bash
# A small read hands the whole 64 KiB chunk it decrypted to the kernel's
# page cache (FUSE_NOTIFY_STORE), so that the next small reads in that
# chunk are served by the kernel (a restore reading a database file at
# random offsets).  What must hold:
#  1. after a cold 4 KiB read in a chunk, 4 KiB reads elsewhere in that
#     chunk send no READ request (counted in the daemon's request trace:
#     one READ each before); a read in another chunk still sends one;
#  2. random 4 KiB reads (fixed seed) return the file's bytes;
#  3. a chunk stored for a reader never lands over what a writer wrote:
#     readers read at random while writers (read-write, and write-only
#     handles, which bypass the cache) rewrite ranges; after each
#     writer's close every byte read is the new one;
#  4. single-threaded (-s) there is no store (a store may wait for a read
#     that only another thread serves): reads work, no NOTIFY in the log;
#  5. the bytes are exact by crdb.py.
# Seeds are fixed; RANDREAD_SEED=N runs others by hand.
. "$(dirname "$0")/lib.sh"

SEED=${RANDREAD_SEED:-7}
note "seed $SEED (RANDREAD_SEED=N for others)"
setup_passphrase
kmount "$STORE" "$MNT" -d
mkdir "$MNT/c1"
mkdata "$T/ref" $((1024 * 1024))
cp "$T/ref" "$MNT/c1/f"

# 1. READ requests of 4 KiB reads, counted in the request trace.
reads() { grep -c "opcode: READ " "$DAEMON_LOG" || true; }
cat >"$T/pread.py" <<'PYEOF'
import os, sys
path, ref = sys.argv[1], open(sys.argv[2], "rb").read()
fd = os.open(path, os.O_RDONLY)
for off in map(int, sys.argv[3:]):
    got = os.pread(fd, 4096, off)
    if got != ref[off:off + 4096]:
        sys.exit("wrong bytes at %d" % off)
PYEOF
stores() { grep -c "NOTIFY: code=4" "$DAEMON_LOG" || true; }
stored_since() { [[ $(stores) -gt $1 ]]; }
n0=$(reads)
s0=$(stores)
"$PY" "$T/pread.py" "$MNT/c1/f" "$T/ref" 8192 || fail "the first 4 KiB read"
n1=$(reads)
assert_eq $((n1 - n0)) 1 "READ requests for a cold 4 KiB read"
# the store follows the read's reply (libfuse logs it just before it
# writes it): wait for it, so a busy machine cannot decide the count
wait_for stored_since "$s0" || fail "no store notification after a cold 4 KiB read"
"$PY" "$T/pread.py" "$MNT/c1/f" "$T/ref" 40960 0 61440 20480 ||
	fail "4 KiB reads in the chunk read before"
n2=$(reads)
note "$((n2 - n1)) READ requests for 4 reads in a chunk read before"
assert_eq $((n2 - n1)) 0 "READ requests for 4 KiB reads in a chunk a read decrypted"
"$PY" "$T/pread.py" "$MNT/c1/f" "$T/ref" $((3 * 65536 + 4096)) ||
	fail "a 4 KiB read in another chunk"
n3=$(reads)
assert_eq $((n3 - n2)) 1 "READ requests for a 4 KiB read in another chunk"

# 2. and 3. Random readers and writers.
cat >"$T/mix.py" <<'PYEOF'
import os, random, sys, threading
path, ref_path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
ref = bytearray(open(ref_path, "rb").read())
size = len(ref)
rnd = random.Random(seed)
stop = threading.Event()
errors = []

def check(fd, what, n=200, rng=rnd):
    for _ in range(n):
        off = rng.randrange(0, size - 4096)
        if os.pread(fd, 4096, off) != bytes(ref[off:off + 4096]):
            errors.append("%s: wrong bytes at %d" % (what, off))
            return

def reader(k):
    # reads at random while writers come and go: their bytes are not
    # checked (a write may be half done), only that reads work
    r = random.Random(seed * 100 + k)
    fd = os.open(path, os.O_RDONLY)
    while not stop.is_set():
        off = r.randrange(0, size - 4096)
        if len(os.pread(fd, 4096, off)) != 4096:
            errors.append("reader %d: short read at %d" % (k, off))
            break
    os.close(fd)

fd = os.open(path, os.O_RDONLY)
check(fd, "random reads", 20000)
os.close(fd)
threads = [threading.Thread(target=reader, args=(k,)) for k in range(3)]
for t in threads:
    t.start()
for i in range(60):
    off = rnd.randrange(0, size - 70000)
    n = rnd.randrange(1, 70000)
    data = os.urandom(n)
    flags = os.O_WRONLY if i % 2 else os.O_RDWR
    w = os.open(path, flags)
    os.pwrite(w, data, off)
    os.close(w)
    ref[off:off + n] = data
    # every byte of the written range and around it, then at random,
    # through a handle opened before and one opened after the writer
    r = os.open(path, os.O_RDONLY)
    lo, hi = max(0, off - 65536), min(size, off + n + 65536)
    for p in range(lo, hi, 4096):
        if os.pread(r, 4096, p) != bytes(ref[p:p + 4096]):
            errors.append("after writer %d: wrong bytes at %d" % (i, p))
            break
    check(r, "after writer %d" % i)
    os.close(r)
    if errors:
        break
stop.set()
for t in threads:
    t.join()
if errors:
    sys.exit("; ".join(errors[:3]))
open(ref_path, "wb").write(ref)
PYEOF
"$PY" "$T/mix.py" "$MNT/c1/f" "$T/ref" "$SEED" ||
	fail "random reads with writers (RANDREAD_SEED=$SEED)"
assert_cmp "$MNT/c1/f" "$T/ref" "the file after the writers"
note "$(stores) chunks handed to the kernel's cache"
kumount "$MNT"

# 4. Single-threaded: no store.
mkdir "$T/mnt-s"
kmount "$STORE" "$T/mnt-s" -s -d
before=$(stores)
"$PY" "$T/pread.py" "$T/mnt-s/c1/f" "$T/ref" 8192 40960 200704 ||
	fail "4 KiB reads, single-threaded"
after=$(stores)
assert_eq "$after" "$before" "store notifications of a single-threaded daemon"
kumount "$T/mnt-s"

# 5. The store's bytes.
assert_crdb_plain "c1/f" "$T/ref"
note ok
