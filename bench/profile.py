"""Where a route's CPU goes under load: py-spy on the API's workers.

Starts the API as `make bench` does (SQLite, HS256, the production settings,
gunicorn.conf.py's workers), drives one route with wrk, and samples every
worker with py-spy while it holds the GIL (Python's own CPU, not waits). Prints
the share of samples in which each function is on the stack, most first:

    .venv/bin/python -m bench.profile /api/me
    .venv/bin/python -m bench.profile /api/health/live --seconds 10 --top 60

py-spy needs the right to read another process's memory (root, or
ptrace_scope 0), as on this project's machines.
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import requests

from bench.run import BACKENDS, LOGIN_BODY, UNREACHABLE_LIMIT, backend_settings, login
from deploy.processes import BIN, Gunicorn, server_env, worker_pids

# Frames on every stack (threads, the pool, gunicorn's start): no information.
BASE_FRAMES = re.compile(
    r"\((threading|concurrent/futures/thread)\.py\)|gunicorn/(arbiter|app/)|^<module>"
)


def folded_shares(paths):
    """(share, function) from py-spy's raw (folded) output, most first."""
    seen, total = Counter(), 0
    for path in paths:
        for line in Path(path).read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue  # a blank or cut line
            frames = {re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")}
            total += int(count)
            for frame in frames:
                seen[frame] += int(count)
    found = [(count / total, frame) for frame, count in seen.most_common() if total]
    return [(share, frame) for share, frame in found if not BASE_FRAMES.search(frame)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="e.g. /api/me (a bearer token is sent to /api/ routes)")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--backend", default="sqlite", choices=BACKENDS)
    args = parser.parse_args()
    if not shutil.which("wrk") or not (BIN / "py-spy").exists():
        sys.exit("error: needs wrk (apt-get install wrk) and py-spy (requirements-dev.txt)")
    workdir = Path(tempfile.mkdtemp(prefix="jwt-api-profile-"))
    with backend_settings(args.backend) as settings:
        env = server_env(workdir, RATELIMIT_LOGIN=UNREACHABLE_LIMIT, **settings)
        env.pop("WEB_CONCURRENCY")  # as make run starts it
        server = Gunicorn(env, workdir / "gunicorn.log").start(ready_path="/api/health/live")
        try:
            profile(server, workdir, args)
        finally:
            server.stop()
            shutil.rmtree(workdir, ignore_errors=True)


def profile(server, workdir, args):
    """wrk on the route; py-spy on every worker meanwhile; the shares."""
    headers = []
    if args.path.startswith("/api/") and "/health" not in args.path:
        register = {"data": LOGIN_BODY, "headers": {"Content-Type": "application/json"}}
        requests.post(server.url + "/api/auth/register", timeout=30, **register)
        headers = ["-H", f"Authorization: Bearer {login(server.url).json()['access_token']}"]

    def wrk(seconds):
        return ["wrk", "-t2", "-c16", f"-d{seconds}s", *headers, server.url + args.path]

    subprocess.run(wrk(2), check=True, capture_output=True)  # warm-up
    load = subprocess.Popen(wrk(args.seconds + 2), text=True, stdout=subprocess.PIPE)  # noqa: S603
    outputs = [workdir / f"spy-{pid}.txt" for pid in worker_pids(server.pid)]
    options = ["--duration", str(args.seconds), "--rate", "250", "--gil", "--nonblocking"]
    spies = [
        subprocess.Popen(  # noqa: S603 - our own tool
            [
                BIN / "py-spy",
                "record",
                "--pid",
                out.stem[4:],
                *options,
                "--format",
                "raw",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for out in outputs
    ]
    for spy in spies:
        spy.wait()
    rate = re.search(r"Requests/sec:\s*([\d.]+)", load.communicate()[0])
    rps = float(rate.group(1)) if rate else 0
    print(f"{args.path}: {rps:,.0f} requests/s under wrk -t2 -c16; share of the samples")
    print("holding the GIL with each function on the stack:\n")
    for share, frame in folded_shares(o for o in outputs if o.exists())[: args.top]:
        print(f"{share * 100:5.1f} %  {frame}")


if __name__ == "__main__":
    main()
