#!/usr/bin/env python3
"""journal_writer.py — one writer of journal_test.sh, until killed; and
the check of what it left.

    journal_writer.py MODE FILE ACKLOG          (write)
    journal_writer.py check-MODE FILE ACKLOG    (check; exit 1 on a violation)

MODE append: appends 4 KiB records "%08d" + filler, each followed by
fsync (odd writers: fdatasync); MODE dsync: opens FILE O_DSYNC and writes
record i into slot i % 16 (a 64 KiB file of overwrites). After each stable
write returns, the record number is appended to ACKLOG (flushed): what was
acknowledged. A failing write (the filesystem cut) ends the writer.

The check, after a cut and recovery: append: the file holds records 1..n
whole and in order, with a <= n <= a + 1 (a: the last acknowledged; one
more may have been written but not acknowledged); dsync: every slot holds
a whole record of its own slot, no older than the last acknowledged write
to it and no newer than a + 1.
"""
import os
import sys

SLOTS = 16
REC = 4096


def record(i):
    head = b"%08d" % i
    return head + bytes([0x41 + i % 26]) * (REC - len(head))


def last_acked(acklog):
    try:
        with open(acklog) as f:
            lines = [l for l in f.read().split("\n") if l.strip()]
        return int(lines[-1]) if lines else 0
    except FileNotFoundError:
        return 0


def whole(buf, i):
    return buf == record(i)


def check(mode, path, acklog):
    a = last_acked(acklog)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:  # never made durable: fine while nothing was acknowledged
        return "ok: no file, nothing acknowledged" if a == 0 else "the file is gone; %d acknowledged" % a
    if mode == "append":
        if len(data) % REC:
            return "size %d is not a whole number of records (last acknowledged %d)" % (len(data), a)
        n = len(data) // REC
        if not a <= n <= a + 1:
            return "%d records, %d acknowledged" % (n, a)
        for j in range(1, n + 1):
            if not whole(data[(j - 1) * REC:j * REC], j):
                return "record %d of %d is not whole or out of order" % (j, n)
        return "ok: %d records, %d acknowledged" % (n, a)
    for s in range(SLOTS):
        buf = data[s * REC:(s + 1) * REC]
        want = max([i for i in range(s, a + 1, SLOTS) if i >= 1] or [0])
        if not buf.strip(b"\0"):
            if want:
                return "slot %d is empty; write %d to it was acknowledged" % (s, want)
            continue
        try:
            v = int(buf[:8])
        except ValueError:
            return "slot %d holds no record" % s
        if v % SLOTS != s or not whole(buf, v) or v < want or v > a + 1:
            return "slot %d holds record %d (last acknowledged write to it: %d, acknowledged %d)" % (s, v, want, a)
    return "ok: %d writes acknowledged" % a


def main():
    mode, path, acklog = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode.startswith("check-"):
        msg = check(mode[6:], path, acklog)
        print(msg)
        return 0 if msg.startswith("ok") else 1
    data_sync = mode == "append" and int(os.environ.get("WRITER", "0")) % 2 == 1
    flags = os.O_WRONLY | os.O_CREAT
    flags |= os.O_APPEND if mode == "append" else os.O_DSYNC
    fd = os.open(path, flags, 0o644)
    ack = open(acklog, "a", buffering=1)
    i = 0
    try:
        while True:
            i += 1
            if mode == "append":
                os.write(fd, record(i))
                (os.fdatasync if data_sync else os.fsync)(fd)
            else:
                os.pwrite(fd, record(i), (i % SLOTS) * REC)
            ack.write("%d\n" % i)
    except OSError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
