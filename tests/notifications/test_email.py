"""E-mail notifications through a REAL SMTP server (``aiosmtpd`` on 127.0.0.1) on SQLite and PostgreSQL: the message
arrives with the right recipient, subject, body and Message-ID; a refusing server is retried with exponential backoff
until it accepts; a permanent refusal or too many attempts fail the delivery; and a sender killed (SIGKILL) between
sending and marking never produces a second e-mail for one delivery."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from smart_trader.challenges.events import ChallengeBreached, ChallengeWarning
from smart_trader.db.writer import BatchWriter
from smart_trader.notifications import rules, store
from smart_trader.notifications.email import SmtpConfig
from smart_trader.notifications.sender import DeliverySender
from smart_trader.notifications.tables import notification_deliveries
from smart_trader.notifications.webhooks import SecretBox
from tests.notifications.crash_sender import SENDER
from tests.notifications.support import (
    NS,
    T0,
    Clock,
    Inbox,
    base,
    challenge_row,
    consume,
    make_world,
    run,
    smtp_server,
    store_events,
)

D = Decimal
REPO = Path(__file__).resolve().parents[2]


def _breach(engine: Engine) -> tuple[str, str]:
    """Alice's challenge breaches; the consumer queues the e-mail. Returns (notification id, delivery id)."""
    w = make_world(engine, "alice")
    e = ChallengeBreached(
        **base(T0, w.account_id),
        rule="daily_loss",
        kind="hard",
        floor=D("9500.00"),
        equity=D("9480.00"),
        balance=D("10000.00"),
    )
    with engine.begin() as conn:
        events = store_events(conn, [challenge_row(e, w.challenge_id, w.account_id)])
    consume(engine, events)
    nid = rules.notification_id(events[0].event_id)
    return nid, rules.delivery_id(nid, "email", "alice@example.com")


def _sender(writer: BatchWriter, port: int, clock: Clock, **options: Any) -> DeliverySender:
    smtp = SmtpConfig(host="127.0.0.1", port=port, sender=SENDER, starttls=False, timeout_s=10)
    return DeliverySender(writer, SecretBox(["k" * 40]), smtp, now_ns=clock, **options)


def _delivery(engine: Engine, delivery: str) -> Any:
    with engine.connect() as conn:
        d = notification_deliveries.c
        return conn.execute(select(notification_deliveries).where(d.id == delivery)).one()


def _settled(inbox: Inbox, seconds: float = 0.5) -> int:
    """The number of messages the server accepted, once nothing more can be on its way."""
    time.sleep(seconds)
    return len(inbox.messages)


def test_the_breach_e_mail_arrives_with_recipient_subject_body_and_message_id(
    engine: Engine, writer: BatchWriter
) -> None:
    nid, delivery = _breach(engine)
    with smtp_server() as (inbox, port):
        assert run(_sender(writer, port, Clock()).run_once) == 1
        assert _settled(inbox) == 1
    envelope, msg = inbox.messages[0]
    assert envelope.mail_from == SENDER and envelope.rcpt_tos == ["alice@example.com"]
    assert msg["To"] == "alice@example.com" and msg["Subject"] == "Challenge failed: daily loss rule broken"
    assert msg["Message-ID"] == f"<{delivery}@smart-trader.test>" and msg["Auto-Submitted"] == "auto-generated"
    body = msg.get_content()
    assert "the daily loss rule was broken at 2026-01-01T00:00:00Z: equity 9480.00 against the floor 9500.00" in body
    assert "FTMO Challenge 2-Step — FTMO Challenge" in body and nid in body
    row = _delivery(engine, delivery)
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None) and row.sent_ns == T0
    assert run(_sender(writer, port, Clock()).run_once) == 0  # nothing left to send


def test_a_refusing_server_is_retried_with_exponential_backoff_until_it_accepts(
    engine: Engine, writer: BatchWriter
) -> None:
    _nid, delivery = _breach(engine)
    clock = Clock()
    with smtp_server() as (inbox, port):
        inbox.refuse_rcpt = 2  # "451 try again later", twice
        sender = _sender(writer, port, clock, backoff_base_s=30)
        assert run(sender.run_once) == 1
        row = _delivery(engine, delivery)
        assert (row.status, row.attempts, row.next_attempt_ns) == ("pending", 1, T0 + 30 * NS)
        assert "451" in row.last_error
        clock.advance(29)
        assert run(sender.run_once) == 0  # not due yet
        clock.advance(1)
        assert run(sender.run_once) == 1
        row = _delivery(engine, delivery)
        assert (row.status, row.attempts, row.next_attempt_ns) == ("pending", 2, clock.ns + 60 * NS)  # doubled
        clock.advance(60)
        assert run(sender.run_once) == 1
        assert _settled(inbox) == 1
    row = _delivery(engine, delivery)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)


def test_a_permanent_refusal_fails_at_once_and_a_temporary_one_after_the_last_attempt(
    engine: Engine, writer: BatchWriter
) -> None:
    _nid, delivery = _breach(engine)
    clock = Clock()
    with smtp_server() as (inbox, port):
        inbox.refuse_rcpt, inbox.refusal = 1, "550 5.1.1 no such mailbox"
        assert run(_sender(writer, port, clock).run_once) == 1
        row = _delivery(engine, delivery)
        assert (row.status, row.attempts) == ("failed", 1) and "550" in row.last_error
        # a fresh delivery that keeps being refused for a while: failed after max_attempts
        with engine.begin() as conn:
            conn.execute(
                notification_deliveries.update()
                .where(notification_deliveries.c.id == delivery)
                .values(status="pending", attempts=0, next_attempt_ns=0)
            )
        inbox.refuse_rcpt, inbox.refusal = 10, "421 4.7.0 busy"
        sender = _sender(writer, port, clock, max_attempts=3, backoff_base_s=1)
        for _ in range(3):
            assert run(sender.run_once) == 1
            clock.advance(3600)
        assert run(sender.run_once) == 0
        assert _settled(inbox, 0.1) == 0
    row = _delivery(engine, delivery)
    assert (row.status, row.attempts) == ("failed", 3) and "421" in row.last_error


def test_e_mail_off_fails_the_delivery_saying_so(engine: Engine, writer: BatchWriter) -> None:
    _nid, delivery = _breach(engine)
    assert run(DeliverySender(writer, SecretBox(["k" * 40]), None, now_ns=Clock()).run_once) == 1
    row = _delivery(engine, delivery)
    assert row.status == "failed" and "SMTP_HOST" in row.last_error


def _kill_sender_at(engine: Engine, port: int, step: str) -> None:
    url = engine.url.render_as_string(hide_password=False)
    out = subprocess.run(
        [sys.executable, "-m", "tests.notifications.crash_sender", url, str(port), step, str(T0)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == -9, (out.returncode, out.stdout, out.stderr)
    assert f"killed at {step}" in out.stdout


def test_a_sender_killed_after_sending_the_message_before_marking_it_sends_it_once_after_restart(
    engine: Engine, writer: BatchWriter
) -> None:
    """kill -9 with the whole message on the wire, nothing marked: the server discards the unfinished transaction;
    after the claim's lease the delivery is sent again — one e-mail in all."""
    _nid, delivery = _breach(engine)
    with smtp_server() as (inbox, port):
        _kill_sender_at(engine, port, "prepared")
        assert _settled(inbox) == 0
        row = _delivery(engine, delivery)
        assert (row.status, row.attempts) == ("sending", 1)  # claimed, lease running
        clock = Clock()
        sender = _sender(writer, port, clock, lease_seconds=120)
        assert run(sender.run_once) == 0  # the lease holds it
        clock.advance(121)
        assert run(sender.run_once) == 1
        assert run(sender.run_once) == 0
        assert _settled(inbox) == 1
    row = _delivery(engine, delivery)
    assert (row.status, row.attempts) == ("sent", 2)
    assert inbox.messages[0][1]["Message-ID"] == f"<{delivery}@smart-trader.test>"


def test_a_sender_killed_after_marking_never_sends_again_at_most_once(engine: Engine, writer: BatchWriter) -> None:
    """kill -9 after "sent" is committed and before the end-of-data line: the server discards the message and the
    delivery is never sent again. This is the documented window where an e-mail can be lost (never doubled)."""
    _nid, delivery = _breach(engine)
    with smtp_server() as (inbox, port):
        _kill_sender_at(engine, port, "marked")
        clock = Clock()
        clock.advance(3600)
        assert run(_sender(writer, port, clock).run_once) == 0
        assert _settled(inbox) == 0
    row = _delivery(engine, delivery)
    assert (row.status, row.attempts) == ("sent", 1)


def test_a_sender_whose_lease_ran_out_gives_way_to_the_one_that_took_over(engine: Engine, writer: BatchWriter) -> None:
    """Sender A stalls with its message on the wire past its lease; sender B takes the delivery over and sends it;
    A's mark is refused (fenced by the attempt number) so A drops its transaction: one e-mail."""
    _nid, delivery = _breach(engine)
    clock = Clock()
    with smtp_server() as (inbox, port):
        b = _sender(writer, port, clock, lease_seconds=60)

        def stall(step: str, _delivery_id: str) -> None:
            if step == "prepared":
                clock.advance(61)
                other = threading.Thread(target=lambda: run(b.run_once))
                other.start()
                other.join()

        a = _sender(writer, port, clock, lease_seconds=60, hook=stall)
        assert run(a.run_once) == 1
        assert (a.sent, b.sent) == (0, 1)
        assert _settled(inbox) == 1
    row = _delivery(engine, delivery)
    assert (row.status, row.attempts) == ("sent", 2)


def test_only_the_kinds_the_user_wants_are_e_mailed(engine: Engine, writer: BatchWriter) -> None:
    w = make_world(engine, "alice")
    with engine.begin() as conn:
        store.set_email_kinds(conn, w.ids["alice"], [], T0)  # no e-mail at all
    e = ChallengeWarning(
        **base(T0, w.account_id),
        rule="daily_loss",
        level=D("0.9"),
        room_used=D("0.9"),
        floor=D("9500.00"),
        value=D("9550.00"),
    )
    with engine.begin() as conn:
        events = store_events(conn, [challenge_row(e, w.challenge_id, w.account_id)])
    consume(engine, events)
    with smtp_server() as (inbox, port):
        assert run(_sender(writer, port, Clock()).run_once) == 0
        assert _settled(inbox, 0.1) == 0


@pytest.mark.parametrize("sender", ["", "not-an-address"])
def test_smtp_host_without_a_sender_address_is_refused_at_start(sender: str) -> None:
    from smart_trader.core.errors import InvalidInputError
    from smart_trader.settings import Settings

    settings = Settings(smtp_host="smtp.example.com", smtp_from=sender, _env_file=None)
    with pytest.raises(InvalidInputError, match="SMTP_FROM"):
        SmtpConfig.from_settings(settings)
    assert SmtpConfig.from_settings(Settings(_env_file=None)) is None  # no host: e-mail off
