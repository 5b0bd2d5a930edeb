#!/usr/bin/env python3
"""Steady booking load on a sold-out cluster, for opsbench's join under load.

Each worker takes a booking and goes round: cancel it, hold its seats again, confirm the
hold (a new booking of the same seats), and starts over with the new booking. Every round
writes three log entries (a cancel, a hold, a confirm). Bookings come on stdin, one per
line: `code<TAB>email<TAB>show_id<TAB>seats` (seats as stored, `A1,A2`).

usage: rebook.py --url http://127.0.0.1:PORT [--url ...] --seconds S [--workers N] < bookings.tsv
It runs until S seconds have passed or the file STOP (given with --stop) exists, then prints
one line: rounds, refusals and errors, and rounds per second. Loopback only; no retries
beyond starting over with another booking.
"""
import argparse
import http.client
import json
import os
import queue
import sys
import threading
import time
import urllib.parse


def post(conn, path, body):
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    try:
        return r.status, json.loads(data or b"null")
    except ValueError:
        return r.status, None


def worker(url, todo, stop, deadline, counts, lock):
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    while time.monotonic() < deadline and not stop():
        try:
            code, email, show, seats = todo.get_nowait()
        except queue.Empty:
            return
        outcome = "refused"
        try:
            s, _ = post(conn, f"/api/bookings/{code}/cancel", {"email": email})
            if s == 200:
                s, hold = post(conn, f"/api/shows/{show}/holds", {"seats": seats.split(",")})
                if s == 201:
                    s, booking = post(conn, f"/api/holds/{hold['hold_id']}/confirm",
                                      {"name": "Rebook Load", "email": email})
                    if s == 201:
                        todo.put((booking["code"], email, show, seats))
                        outcome = "rounds"
        except (OSError, http.client.HTTPException, KeyError, TypeError):
            outcome = "errors"
            conn.close()
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        with lock:
            counts[outcome] += 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", action="append", required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--stop", default=None)
    a = p.parse_args()
    for url in a.url:
        host = urllib.parse.urlparse(url).hostname or ""
        if not host.startswith("127."):
            sys.exit(f"rebook: {url} is not a loopback address")
    todo = queue.Queue()
    for line in sys.stdin:
        parts = line.rstrip("\n").split("\t")
        if len(parts) == 4:
            todo.put(tuple(parts))
    counts = {"rounds": 0, "refused": 0, "errors": 0}
    lock = threading.Lock()
    stop = (lambda: os.path.exists(a.stop)) if a.stop else (lambda: False)
    started = time.monotonic()
    deadline = started + a.seconds
    threads = [threading.Thread(target=worker, args=(a.url[i % len(a.url)], todo, stop, deadline, counts, lock))
               for i in range(a.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    print(f"rebook: {counts['rounds']} rounds (cancel, hold, confirm) in {took:.1f} s, "
          f"{counts['rounds'] / max(took, 1e-9):.0f}/s; {counts['refused']} refused, {counts['errors']} errors")


if __name__ == "__main__":
    main()
