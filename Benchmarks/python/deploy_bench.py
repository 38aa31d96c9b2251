"""sim-deploy's job store (sim-bench deploy) against Python's sqlite3 doing the same durable
transactions with no rules: per robot one notification, a start, three progress updates and the
end, each an UPDATE of the execution plus (for status changes) a row of the log, in WAL with
synchronous FULL, on the same disk. Usage (after `swift build -c release --product sim-bench`):

    .venv/bin/python Benchmarks/python/deploy_bench.py [--bin .build/release/sim-bench] [--robots 1000]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import time


def raw(path: str, robots: int) -> tuple[float, int]:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode = WAL")
    c.execute("PRAGMA synchronous = FULL")
    c.execute("CREATE TABLE executions(job_id TEXT, robot_id TEXT, status TEXT, version_number INTEGER, phase TEXT, PRIMARY KEY(job_id, robot_id))")
    c.execute("CREATE TABLE transitions(sequence INTEGER PRIMARY KEY AUTOINCREMENT, at REAL, job_id TEXT, robot_id TEXT, from_status TEXT, to_status TEXT)")
    c.execute("BEGIN")
    for k in range(robots):
        c.execute("INSERT INTO executions VALUES ('bench', ?, 'QUEUED', 1, '')", (f"robot-{k:05d}",))
    c.execute("COMMIT")
    start, transactions = time.perf_counter(), 0
    for k in range(robots):
        robot = f"robot-{k:05d}"
        steps = [("QUEUED", None, "notified"), ("IN_PROGRESS", "QUEUED", ""), ("IN_PROGRESS", None, "downloading"),
                 ("IN_PROGRESS", None, "validating"), ("IN_PROGRESS", None, "committing"), ("SUCCEEDED", "IN_PROGRESS", "committed")]
        for status, moved_from, phase in steps:
            c.execute("BEGIN IMMEDIATE")
            c.execute("UPDATE executions SET status = ?, phase = ?, version_number = version_number + 1 WHERE job_id = 'bench' AND robot_id = ?",
                      (status, phase, robot))
            if moved_from:
                c.execute("INSERT INTO transitions(at, job_id, robot_id, from_status, to_status) VALUES (?, 'bench', ?, ?, ?)",
                          (time.time(), robot, moved_from, status))
            c.execute("COMMIT")
            transactions += 1
    return time.perf_counter() - start, transactions


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=".build/release/sim-bench")
    p.add_argument("--robots", type=int, default=1000)
    a = p.parse_args()
    seconds, transactions = raw("/tmp/raw-deploy-bench.sqlite", a.robots)
    out = subprocess.run([a.bin, "deploy", "--robots", str(a.robots)], capture_output=True, text=True, check=True).stdout.split()
    swift_seconds, swift_transactions = float(out[1]), int(out[3])
    print(f"python sqlite3 (no rules) {transactions} transactions in {seconds:.2f} s: {transactions / seconds:.0f}/s")
    print(f"sim-deploy store          {swift_transactions} transactions in {swift_seconds:.2f} s: {swift_transactions / swift_seconds:.0f}/s "
          f"(job completed: {out[-1]})")
    print(f"ratio {(swift_transactions / swift_seconds) / (transactions / seconds):.2f}x (the store's rate against raw sqlite3's)")


if __name__ == "__main__":
    main()
