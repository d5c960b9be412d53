"""A delivery sender that is killed (SIGKILL, as ``kill -9`` does) at one step of an e-mail delivery: run as
``python -m tests.notifications.crash_sender <database url> <smtp port> <step> <now ns>`` by the e-mail tests.

Steps (``notifications/sender.py`` :data:`~smart_trader.notifications.sender.Hook`): ``prepared`` — the whole message
is on the wire but not the end-of-data line, nothing marked; ``marked`` — "sent" is committed, the end-of-data line
not sent yet.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from smart_trader.db.engine import make_engine
from smart_trader.db.writer import BatchWriter
from smart_trader.notifications.email import SmtpConfig
from smart_trader.notifications.sender import DeliverySender
from smart_trader.notifications.webhooks import SecretBox

SENDER = "alerts@smart-trader.test"


def main(url: str, port: int, step: str, now: int) -> None:
    engine = make_engine(url)
    writer = BatchWriter(engine)
    writer.start()

    def die(at: str, delivery: str) -> None:
        if at == step:
            sys.stdout.write(f"killed at {at} of {delivery}\n")
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    smtp = SmtpConfig(host="127.0.0.1", port=port, sender=SENDER, starttls=False, timeout_s=10)
    sender = DeliverySender(writer, SecretBox(["k" * 40]), smtp, now_ns=lambda: now, hook=die)
    asyncio.run(sender.run_once())
    sys.stdout.write("finished without being killed\n")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
