"""`dermseg-serve`'s memory under the worst requests its limits allow, per process, at its default settings.

usage: python benchmarks/serve_memory.py [--model MODEL] [--json OUT]

Starts the `dermseg-serve` command (one replica, batches of 8, the default limits: 64 MB bodies, 16 queued, a 2048 MB
decode budget) and, phase by phase, reads each process's peak RSS (VmHWM) from /proc:

    idle          after one small image
    bodies        32 concurrent bodies of 64 MB - 1 byte (the most the front holds: 16 with the replica, 16 queued)
    pixels        8 concurrent PNGs of 10950 x 10950 (120 M pixels each, the default --max-pixels, in a small file)
    refusals      a body whose Content-Length claims 1 GB (refused before it is read), and 48 concurrent requests
                  (those over what the front holds get 503 at once)

The processes: the front (the dermseg-serve process: HTTP, bodies), the replica (decoding, inference), and Ray's raylet
(which holds the object store where bodies travel to the replica); Ray's HTTP proxy is not started.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dermseg_deploy.bench.environment import cpu_model  # noqa: E402

MB = 2**20


def peak_rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]


def rss_mb(pid: int) -> dict[str, float]:
    """Resident memory now: private (anonymous) and shared (the object store's pages mapped in), in MB."""
    text = Path(f"/proc/{pid}/status").read_text()
    return {key: int(re.search(rf"{key}:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]
            for key in ("VmRSS", "RssAnon", "RssShmem")}


def post(port: int, body: bytes | None, declared: int | None = None) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        connection.putrequest("POST", "/segment?name=bench")
        connection.putheader("Content-Length", str(declared if declared is not None else len(body or b"")))
        connection.endheaders()
        try:
            if body:
                connection.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = connection.getresponse()
        text = response.read()
        return response.status, "" if response.status == 200 else text.decode("utf-8", "replace").strip()[:120]
    finally:
        connection.close()


def raylet_pid() -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if "raylet" in (entry / "comm").read_text():
                    return int(entry.name)
            except OSError:
                continue
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="default: the shipped model")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--pixel-requests", type=int, default=8, help="Concurrent 120 M pixel PNGs.")
    args = parser.parse_args(argv)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [str(ROOT / ".venv" / "bin" / "dermseg-serve"), "--port", str(port), "--replicas", "1", "--threads", "2"]
    if args.model:
        command += ["--engine", str(args.model)]
    work = Path(tempfile.mkdtemp(prefix="dermseg-serve-memory-"))
    big = io.BytesIO()  # 120 M pixels in a small file: a lesion-coloured disc on skin tone, as a decompression bomb is
    picture = Image.new("RGB", (10950, 10950), (224, 172, 150))
    ImageDraw.Draw(picture).ellipse((2000, 2000, 8000, 8000), fill=(120, 70, 50))
    picture.save(big, format="PNG")
    big_png = big.getvalue()
    del picture
    small = sorted((ROOT / "dermseg_deploy" / "samples" / "images").iterdir())[0].read_bytes()
    log = (work / "serve.log").open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    phases: dict[str, Any] = {}
    try:
        for _ in range(120):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(1)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("GET", "/healthz")
        health = json.loads(connection.getresponse().read())
        pids = {"front (dermseg-serve)": server.pid, "replica": int(health["pid"]), "raylet": raylet_pid()}

        def record(phase: str, answers: list[tuple[int, str]], seconds: float) -> None:
            statuses = [status for status, _ in answers]
            phases[phase] = {"statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
                             "texts": sorted({text for _, text in answers if text}), "seconds": round(seconds, 1),
                             "peak_rss_mb": {name: round(peak_rss_mb(pid), 1) for name, pid in pids.items() if pid},
                             "rss_mb_after": {name: rss_mb(pid) for name, pid in pids.items() if pid}}
            print(phase, phases[phase], file=sys.stderr)

        def concurrent(body: bytes | None, count: int, declared: int | None = None) -> list[tuple[int, str]]:
            with ThreadPoolExecutor(count) as pool:
                return list(pool.map(lambda _: post(port, body, declared), range(count)))

        start = time.monotonic()
        record("idle", concurrent(small, 1), time.monotonic() - start)
        start = time.monotonic()
        record("bodies: 32 x 64 MB", concurrent(b"\0" * (64 * MB - 1), 32), time.monotonic() - start)
        start = time.monotonic()
        record(f"pixels: {args.pixel_requests} x 120 M pixels (PNG)", concurrent(big_png, args.pixel_requests),
               time.monotonic() - start)
        start = time.monotonic()
        record("1 GB claimed", concurrent(None, 1, 2**30), time.monotonic() - start)
        start = time.monotonic()
        record("48 concurrent small requests", concurrent(small, 48), time.monotonic() - start)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=120)
    document = {"command": " ".join(["python benchmarks/serve_memory.py", *argv]), "serve_command": command[1:],
                "cpu": cpu_model(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                "png_bytes": len(big_png), "phases": phases, "pids": pids}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(phases, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
