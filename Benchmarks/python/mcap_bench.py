"""Our MCAP writer (sim-bench mcap) against Python's `mcap` writer on the same messages: 200,000
small state messages (200 bytes) interleaved with 4,000 camera images (128x128 rgb8), uncompressed
1 MiB chunks, median of 5 runs each. Usage (after `swift build -c release --product sim-bench`):

    .venv/bin/python Benchmarks/python/mcap_bench.py [--bin .build/release/sim-bench]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time

from mcap.writer import CompressionType, Writer


def python_writer(path: str, small: int, images: int) -> tuple[float, int]:
    small_payload, image = bytes([7]) * 200, bytes([128]) * (128 * 128 * 3)
    start = time.perf_counter()
    with open(path, "wb") as f:
        w = Writer(f, chunk_size=1 << 20, compression=CompressionType.NONE)
        w.start(profile="", library="bench")
        schema = w.register_schema(name="bench.Message", encoding="protobuf", data=bytes([1]) * 2000)
        state = w.register_channel(topic="/state", message_encoding="protobuf", schema_id=schema)
        camera = w.register_channel(topic="/camera", message_encoding="protobuf", schema_id=schema)
        every, t, k = max(1, small // max(1, images)), 1_000_000_000, 0
        for i in range(small):
            w.add_message(channel_id=state, log_time=t, publish_time=t, data=small_payload, sequence=i)
            t += 1000
            if i % every == 0 and k < images:
                w.add_message(channel_id=camera, log_time=t, publish_time=t, data=image, sequence=k)
                k += 1
        w.finish()
    return time.perf_counter() - start, os.path.getsize(path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=".build/release/sim-bench")
    p.add_argument("--small", type=int, default=200_000)
    p.add_argument("--images", type=int, default=4_000)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    runs = [python_writer("/tmp/py-mcap-bench.mcap", a.small, a.images) for _ in range(a.repeats)]
    py_seconds, py_bytes = statistics.median(r[0] for r in runs), runs[0][1]
    out = subprocess.run([a.bin, "mcap", "--small", str(a.small), "--images", str(a.images), "--repeats", str(a.repeats)],
                         capture_output=True, text=True, check=True).stdout.split()
    swift_seconds, swift_bytes = float(out[1]), int(out[3])
    print(f"python mcap {py_seconds:.3f} s ({py_bytes / py_seconds / 1e6:.0f} MB/s, {py_bytes} bytes)")
    print(f"robosim     {swift_seconds:.3f} s ({swift_bytes / swift_seconds / 1e6:.0f} MB/s, {swift_bytes} bytes)")
    print(f"ratio       {py_seconds / swift_seconds:.2f}x (robosim's writer against Python's)")


if __name__ == "__main__":
    main()
