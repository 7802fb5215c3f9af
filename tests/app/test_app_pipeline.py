"""The pipeline itself: claim once, retry with backoff then fail, flag unknown outcomes."""

from __future__ import annotations

import time
from datetime import timedelta
from itertools import pairwise

from app_helpers import wait_for
from app_recording import RecordingMailer
from openapi_server.config import Settings
from openapi_server.db import Database, EmailMessage, utcnow
from openapi_server.mailer import OutgoingEmail, PermanentMailerError, TransientMailerError
from openapi_server.pipeline import Outcome, Pipeline, Result, backoff_s
from sqlalchemy import select, text


def _queued_message(api, email: str = "p@example.com") -> int:
    cid = api.post("/clients", json={"name": "P", "email": email}).json()["id"]
    return api.post("/email/send", json={"client_id": cid, "subject": "S", "body": "B"}).json()[
        "id"
    ]


def _row(db: Database, mid: int) -> EmailMessage:
    with db.session() as s:
        return s.scalars(select(EmailMessage).where(EmailMessage.id == mid)).one()


def _held(make_client, mailer):
    """An app whose background queue is stopped, so the test drives the pipeline itself."""
    api = make_client(mailer)
    ctx = api.app.state.ctx
    ctx.queue.stop()
    return api, ctx


def test_only_one_claim_wins(make_client) -> None:
    mailer = RecordingMailer()
    api, ctx = _held(make_client, mailer)
    mid = _queued_message(api)
    other = Pipeline(ctx.db, mailer, ctx.settings, worker_id="other")
    assert ctx.pipeline.process(mid).outcome is Outcome.SENT
    assert other.process(mid).outcome is Outcome.SKIPPED
    assert ctx.pipeline.process(mid).outcome is Outcome.SKIPPED
    assert mailer.per_message() == {mid: 1}


def test_transient_errors_retry_with_backoff_then_succeed(make_client, settings: Settings) -> None:
    calls_at: list[float] = []

    class TimedMailer(RecordingMailer):
        def send(self, email: OutgoingEmail) -> str:
            calls_at.append(time.monotonic())
            return super().send(email)

    mailer = TimedMailer(failures=[TransientMailerError("throttled")] * 2)
    # inline queue running: retries are scheduled by it, 0.1-0.2 s then 0.2-0.4 s later
    api = make_client(mailer, settings_=settings.with_(retry_backoff_base_s=0.2))
    mid = _queued_message(api)
    done = wait_for(lambda: (r := api.get(f"/email/{mid}").json())["status"] == "sent" and r)
    assert done["attempts"] == 3
    assert mailer.per_message() == {mid: 3}
    gaps = [later - earlier for earlier, later in pairwise(calls_at)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2, gaps


def test_transient_errors_give_up_after_max_attempts(make_client, settings: Settings) -> None:
    mailer = RecordingMailer(failures=[TransientMailerError("throttled")] * 10)
    api = make_client(mailer, settings_=settings.with_(max_attempts=3))
    mid = _queued_message(api)
    done = wait_for(lambda: (r := api.get(f"/email/{mid}").json())["status"] == "failed" and r)
    assert done["attempts"] == 3 and "gave up" in done["last_error"]
    assert mailer.per_message() == {mid: 3}


def test_retry_is_not_claimable_before_it_is_due(make_client, settings: Settings) -> None:
    mailer = RecordingMailer(failures=[TransientMailerError("throttled")])
    api, ctx = _held(make_client, mailer)
    pipeline = Pipeline(ctx.db, mailer, settings.with_(retry_backoff_base_s=60.0))
    mid = _queued_message(api)
    first = pipeline.process(mid)
    assert first.outcome is Outcome.RETRY and 30 <= first.delay_s <= 60
    early = pipeline.process(mid)
    assert early.outcome is Outcome.NOT_DUE and early.delay_s > 0
    assert mailer.per_message() == {mid: 1}
    assert _row(ctx.db, mid).status == "queued"


def test_permanent_error_fails_without_retry(make_client) -> None:
    mailer = RecordingMailer(failures=[PermanentMailerError("MessageRejected")])
    api, ctx = _held(make_client, mailer)
    mid = _queued_message(api)
    assert ctx.pipeline.process(mid).outcome is Outcome.FAILED
    row = _row(ctx.db, mid)
    assert (row.status, row.attempts) == ("failed", 1)
    assert ctx.pipeline.process(mid).outcome is Outcome.SKIPPED


def test_unknown_outcome_is_flagged_and_never_resent(make_client) -> None:
    mailer = RecordingMailer(failures=[TimeoutError("read timed out after the request left")])
    api, ctx = _held(make_client, mailer)
    mid = _queued_message(api)
    assert ctx.pipeline.process(mid).outcome is Outcome.RECONCILE
    status = api.get(f"/email/{mid}").json()
    assert status["status"] == "sending" and status["needs_reconciliation"] is True
    for _ in range(3):  # redeliveries, sweeps: nothing sends it again
        assert ctx.pipeline.process(mid).outcome is Outcome.SKIPPED
        ctx.pipeline.sweep(now=utcnow() + timedelta(days=1), requeue_after_s=0)
    assert mailer.per_message() == {mid: 1}


def test_sweeper_flags_stuck_sending_and_requeues_lost_queued(make_client) -> None:
    mailer = RecordingMailer()
    api, ctx = _held(make_client, mailer)
    stuck, lost, fresh = (_queued_message(api, f"p{i}@example.com") for i in range(3))
    later = utcnow() + timedelta(seconds=ctx.settings.sending_timeout_s + 1)
    with ctx.db.primary.begin() as conn:  # a worker died after claiming `stuck`
        conn.execute(
            text("UPDATE email_messages SET status='sending', claimed_at=:t WHERE id=:id"),
            {"t": utcnow(), "id": stuck},
        )
        conn.execute(
            text("UPDATE email_messages SET enqueued_at=:t WHERE id=:id"),
            {"t": later - timedelta(seconds=ctx.settings.requeue_after_s + 5), "id": lost},
        )
        conn.execute(
            text("UPDATE email_messages SET enqueued_at=:t WHERE id=:id"),
            {"t": later, "id": fresh},
        )
    report = ctx.pipeline.sweep(now=later)
    assert report.flagged == 1 and report.requeue == [lost]
    row = _row(ctx.db, stuck)
    assert row.status == "sending" and row.needs_reconciliation
    assert ctx.pipeline.sweep(now=later).flagged == 0  # flagged once
    assert ctx.pipeline.process(stuck).outcome is Outcome.SKIPPED
    assert mailer.calls == []


def test_inline_queue_picks_up_rows_left_queued_by_a_previous_process(make_client) -> None:
    mailer = RecordingMailer()
    api, _ = _held(make_client, mailer)
    mid = _queued_message(api)
    assert mailer.calls == []
    restarted = make_client(mailer)  # a new process starting on the same database
    wait_for(lambda: restarted.get(f"/email/{mid}").json()["status"] == "sent")
    assert mailer.per_message() == {mid: 1}


def test_backoff_grows_and_is_capped() -> None:
    s = Settings.from_env({}).with_(retry_backoff_base_s=2.0, retry_backoff_max_s=10.0)
    assert 1.0 <= backoff_s(s, 1) <= 2.0
    assert 4.0 <= backoff_s(s, 3) <= 8.0
    assert 5.0 <= backoff_s(s, 10) <= 10.0


def test_reconciliation_records_the_operator_s_finding(
    make_client, settings: Settings, monkeypatch, capsys
) -> None:
    from openapi_server import reconcile

    mailer = RecordingMailer(failures=[TimeoutError("?"), TimeoutError("?")])
    api, ctx = _held(make_client, mailer)
    left, lost = _queued_message(api, "p1@example.com"), _queued_message(api, "p2@example.com")
    assert ctx.pipeline.process(left).outcome is Outcome.RECONCILE
    assert ctx.pipeline.process(lost).outcome is Outcome.RECONCILE
    assert [row[0] for row in reconcile.flagged(ctx.db)] == [left, lost]

    # Through the command line, as an operator would.
    url = settings.database_url.render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    assert reconcile.main([]) == 0
    assert f"{left}\tclient=" in capsys.readouterr().out
    assert reconcile.main(["sent", str(left), "ses-0001"]) == 0
    assert reconcile.main(["sent", str(left)]) == 1  # no longer flagged
    status = api.get(f"/email/{left}").json()
    assert (status["status"], status["provider_message_id"]) == ("sent", "ses-0001")
    assert status["needs_reconciliation"] is False

    assert reconcile.resolve(ctx.db, lost, "requeue")
    assert not reconcile.resolve(ctx.db, lost, "requeue")  # only flagged rows
    assert ctx.pipeline.process(lost).outcome is Outcome.SENT
    assert reconcile.main(["bogus", "1"]) == 2
    capsys.readouterr()
    for out_of_range in ("2147483648", "99999999999999999999", "0"):
        assert reconcile.main(["sent", out_of_range]) == 2  # usage, not a traceback
        err = capsys.readouterr().err
        assert "Traceback" not in err and "between 1 and 2147483647" in err
    assert mailer.per_message() == {left: 1, lost: 2}


def test_a_late_answer_from_an_old_claim_cannot_overwrite_a_newer_claim(make_client) -> None:
    import threading

    from openapi_server import reconcile

    release = threading.Event()
    calls: list[int] = []
    in_flight: list[tuple[object, ...]] = []  # the new claim's row around the late answer

    def snapshot() -> tuple[object, ...]:
        r = _row(ctx.db, mid)
        return (r.status, r.claimed_by, r.needs_reconciliation, r.last_error, r.updated_at)

    class SlowFirstMailer:
        def send(self, email) -> str:
            calls.append(email.message_id)
            if len(calls) == 1:
                # Until the test lets it: the late answer comes during the new claim's send.
                release.wait()
                raise TimeoutError("late")
            # The new claim is in flight, its row in `sending`: the old claim answers now.
            in_flight.append(snapshot())
            release.set()
            first.join(timeout=60)  # a hang guard: the late answer is one UPDATE
            in_flight.append(snapshot())
            return "second-claim"

    api, ctx = _held(make_client, SlowFirstMailer())
    mid = _queued_message(api)
    first = threading.Thread(target=ctx.pipeline.process, args=(mid,), daemon=True)
    first.start()
    try:
        wait_for(lambda: calls)
        ctx.pipeline.sweep(now=utcnow() + timedelta(hours=1))  # flagged while still in flight
        assert reconcile.resolve(ctx.db, mid, "requeue")  # (an operator's mistake)
        assert ctx.pipeline.process(mid).outcome is Outcome.SENT  # same process, new claim
    finally:
        release.set()
        first.join(timeout=60)  # a hang guard, as above
    assert not first.is_alive()
    # The late answer ("outcome unknown") left the newer claim's row as it was.
    before, after = in_flight
    assert before[0] == "sending" and after == before
    row = _row(ctx.db, mid)
    assert (row.status, row.provider_message_id, row.needs_reconciliation) == (
        "sent",
        "second-claim",
        False,
    )


def test_only_retries_and_early_claims_go_back_to_the_queue() -> None:
    assert Result(Outcome.RETRY, 3.0).requeue_in_s == 3.0
    assert Result(Outcome.NOT_DUE, -1.0).requeue_in_s == 0.01  # due by now: almost at once
    for outcome in set(Outcome) - {Outcome.RETRY, Outcome.NOT_DUE}:
        assert Result(outcome, 5.0).requeue_in_s is None, outcome


def test_an_unsubscribe_from_the_message_s_workspace_stops_it_after_the_claim(make_client):
    mailer = RecordingMailer()
    api, ctx = _held(make_client, mailer)
    mid = _queued_message(api, "Late@example.com")
    other = _queued_message(api, "late-other@example.com")
    with ctx.db.primary.begin() as conn:  # recorded while the message waited; client still active
        conn.execute(
            text(
                "INSERT INTO workspace_unsubscribes (workspace_id, email_key, created_at)"
                " SELECT workspace_id, 'late@example.com', :t FROM email_messages WHERE id = :id"
            ),
            {"t": utcnow(), "id": mid},
        )
    assert ctx.pipeline.process(mid).outcome is Outcome.SUPPRESSED
    assert _row(ctx.db, mid).last_error == "suppressed: unsubscribed"
    assert ctx.pipeline.process(other).outcome is Outcome.SENT
    assert mailer.per_message() == {other: 1}
