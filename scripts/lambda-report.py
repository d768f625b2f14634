#!/usr/bin/env python3
"""Prints each Lambda package's zipped size and each bootstrap's init time.

Init time is what Lambda bills as the Init phase: from exec until the bootstrap's first
GET /2018-06-01/runtime/invocation/next, measured against a stand-in Runtime API on
loopback that answers nothing (the bootstrap waits there until it is killed).

    scripts/lambda-report.py --zips target/lambda --bootstraps target/lambda-x86 [--runs 30]
    scripts/lambda-report.py --bootstraps target/lambda-x86 --against OTHER [--env NAME=VALUE]

`--against OTHER` compares two builds (another checkout's bootstraps, in the same layout):
their runs alternate, so a busy machine slows both alike, and the change in median init
time is printed per function.

`--zips DIR` reads DIR/<function>/bootstrap.zip (cargo lambda's layout); `--bootstraps DIR`
runs DIR/<function>/bootstrap, or the bootstrap inside DIR/<function>/bootstrap.zip
(packages for this machine, built with the same profile).
"""

import argparse
import http.server
import os
import socket
import statistics
import subprocess
import sys
import threading
import tempfile
import time
import zipfile

FUNCTIONS = ["api", "webhooks", "ingest", "deployer", "notifier"]
GOAL_ZIP_BYTES = 6 * 1000 * 1000
GOAL_INIT_MS = 20.0

# What a function reads at init; values that parse, pointing at nothing that is contacted.
ENV = {
    "GANTRY_TABLE": "gantry",
    "GANTRY_EVENTS_QUEUE_URL": "http://127.0.0.1:9/000000000000/gantry-events",
    "GANTRY_DEPLOY_QUEUE_URL": "http://127.0.0.1:9/000000000000/gantry-deploy-jobs",
    "GANTRY_NOTIFY_QUEUE_URL": "http://127.0.0.1:9/000000000000/gantry-notifications",
    "GANTRY_DATA_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    "GANTRY_JWT_SECRET": "report-only-jwt-secret-0123456789abcdef",
    "GANTRY_EVIDENCE_KEY": "report-only-evidence-key-0123456789abcdef",
    "GANTRY_LOG_FORMAT": "json",
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_LOG_STREAM_NAME": "report",
    "PATH": "/usr/bin:/bin",
}


class RuntimeApi(http.server.ThreadingHTTPServer):
    """Records when /runtime/invocation/next is first asked for, and never answers it."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.polled = threading.Event()
        self.polled_at = 0.0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next") and not self.server.polled.is_set():
            self.server.polled_at = time.perf_counter()
            self.server.polled.set()
        # Hold the long poll open, as the real Runtime API does between invocations.
        time.sleep(5)


def init_ms(bootstrap, function):
    server = RuntimeApi()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = dict(ENV, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
               AWS_LAMBDA_FUNCTION_NAME=f"gantry-{function}")
    started = time.perf_counter()
    proc = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not server.polled.wait(10):
            err = proc.stderr.read1(4096).decode(errors="replace") if proc.poll() is not None else ""
            raise RuntimeError(f"{bootstrap} did not reach the Runtime API in 10 s {err}")
        return (server.polled_at - started) * 1000
    finally:
        proc.kill()
        proc.wait()
        server.shutdown()
        server.server_close()


def unpack(package):
    """The bootstrap inside a package, extracted to a temporary folder."""
    folder = tempfile.mkdtemp(prefix="gantry-bootstrap-")
    with zipfile.ZipFile(package) as z:
        path = z.extract("bootstrap", folder)
    os.chmod(path, 0o755)
    return path


def bootstrap_in(folder, function):
    bootstrap = os.path.join(folder, function, "bootstrap")
    if not os.path.exists(bootstrap):
        bootstrap = unpack(os.path.join(folder, function, "bootstrap.zip"))
    return bootstrap


def compare(ours, theirs, runs):
    """Median init times of two builds, runs alternating."""
    print(f"{'function':<10} {'other p50 ms':>13} {'this p50 ms':>12} {'change ms':>10}")
    for function in FUNCTIONS:
        a, b = bootstrap_in(theirs, function), bootstrap_in(ours, function)
        other, this = [], []
        for _ in range(runs):
            other.append(init_ms(a, function))
            this.append(init_ms(b, function))
        p_other, p_this = statistics.median(other), statistics.median(this)
        print(f"{function:<10} {p_other:>13.2f} {p_this:>12.2f} {p_this - p_other:>+10.2f}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zips", help="folder of <function>/bootstrap.zip")
    parser.add_argument("--bootstraps", help="folder of <function>/bootstrap for this machine")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--against", help="another build's folder of <function>/bootstrap to compare with")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an extra variable, e.g. OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9 (tracing on)")
    args = parser.parse_args()
    ENV.update(pair.split("=", 1) for pair in args.env)
    if args.against:
        return compare(args.bootstraps, args.against, args.runs)
    failed = False
    print(f"{'function':<10} {'zip MB':>8} {'init p50 ms':>12} {'init p90 ms':>12} {'init max ms':>12}")
    for function in FUNCTIONS:
        row = [f"{function:<10}"]
        if args.zips:
            size = os.path.getsize(os.path.join(args.zips, function, "bootstrap.zip"))
            failed |= size > GOAL_ZIP_BYTES
            row.append(f"{size / 1e6:>8.2f}")
        else:
            row.append(f"{'-':>8}")
        if args.bootstraps:
            bootstrap = bootstrap_in(args.bootstraps, function)
            times = sorted(init_ms(bootstrap, function) for _ in range(args.runs))
            p50 = statistics.median(times)
            failed |= p50 > GOAL_INIT_MS
            row += [f"{p50:>12.1f}", f"{times[int(len(times) * 0.9) - 1]:>12.1f}", f"{times[-1]:>12.1f}"]
        print(" ".join(row))
    print(f"goals: at most {GOAL_ZIP_BYTES / 1e6:g} MB zipped and {GOAL_INIT_MS:g} ms median init per function;"
          f" {'a goal is missed' if failed else 'all met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
