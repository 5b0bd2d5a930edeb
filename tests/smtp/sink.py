"""A real SMTP server for the mail tests (Debian's python3-aiosmtpd).

    python3 tests/smtp/sink.py MODE PORT DIR

MODE accept: every message is taken and written to DIR as one JSON file (its Message-ID,
recipients, subject and decoded text and HTML parts). MODE refuse: every message is
refused at DATA with a 554. MODE hang: the server greets, then never answers DATA.
Every DATA command, whatever the mode, appends a line to DIR/attempts.
"""
import asyncio
import email
import email.policy
import json
import os
import sys
import time

from aiosmtpd.controller import Controller

mode, port, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class Handler:
    async def handle_DATA(self, server, session, envelope):
        with open(os.path.join(outdir, "attempts"), "a") as f:
            f.write(mode + "\n")
        if mode == "refuse":
            return "554 5.7.1 refused by the test server"
        if mode == "hang":
            await asyncio.sleep(3600)
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        parts = {}
        for part in msg.walk():
            if part.get_content_maintype() == "text":
                parts[part.get_content_subtype()] = part.get_content()
        record = {
            "message_id": msg["Message-ID"],
            "from": msg["From"],
            "to": envelope.rcpt_tos,
            "subject": msg["Subject"],
            "content_type": msg.get_content_type(),
            "text": parts.get("plain", ""),
            "html": parts.get("html", ""),
        }
        path = os.path.join(outdir, "%d.json" % time.time_ns())
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 OK"


controller = Controller(Handler(), hostname="127.0.0.1", port=port)
controller.start()
print("ready", flush=True)
try:
    while True:
        time.sleep(3600)
finally:
    controller.stop()
