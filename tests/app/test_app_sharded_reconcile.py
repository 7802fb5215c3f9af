"""`coldreach-app reconcile` on shards: the operator lists and resolves flagged messages
wherever their client lives. The directory holds no messages, so a command that read
only the phase-3 `DATABASE_URL` (the directory) would list nothing.

Two PostgreSQL shards and a directory (the `sharded` fixture), the phase-3 services in
this process, a message on each shard left `sending` with an unknown outcome.
"""

from __future__ import annotations

import pytest
from app_recording import RecordingMailer
from app_sharded import accept, clients_on_shards, shard_env, sharded_edge
from openapi_server import reconcile
from openapi_server.config import Settings
from openapi_server.db import EmailMessage, OutboxRecord
from openapi_server.kafka.consumer import session_transaction
from openapi_server.pipeline import Outcome, Pipeline
from openapi_server.sharding import ShardRouter
from rpc_harness import running_services
from sqlalchemy import func, select


def _env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables a phase-3 operator's shell has: the shards, the directory, Kafka."""
    assert settings.db_directory_url is not None
    shard_env(monkeypatch, settings.db_shards, settings.db_directory_url)
    monkeypatch.setenv("QUEUE_BACKEND", "kafka")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", settings.kafka.bootstrap_servers)


def test_flagged_messages_are_listed_and_resolved_on_every_shard(
    sharded: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mailer = RecordingMailer(failures=[TimeoutError("?"), TimeoutError("?")])
    with running_services(sharded) as services, sharded_edge(services, sharded) as api:
        router: ShardRouter = services.sessions.router  # type: ignore[attr-defined]
        # A client on each shard, each with one accepted message.
        on = {
            shard: (ids[0], accept(api, ids[0]))
            for shard, ids in clients_on_shards(api, router, 1).items()
        }
        # The provider times out on both: the outcome is unknown, the rows are flagged.
        shard = router.shards()["1"]
        for cid, mid in on.values():
            pipeline = Pipeline(shard, mailer, sharded, directory=router.directory_database)
            begin = session_transaction(router.session_for, cid)
            assert pipeline.bound(begin).process(mid).outcome is Outcome.RECONCILE

        _env(sharded, monkeypatch)
        capsys.readouterr()
        assert reconcile.main([]) == 0
        listed = capsys.readouterr().out.splitlines()
        (c1, m1), (c2, m2) = on["1"], on["2"]
        assert len(listed) == 2, listed
        assert listed[0].startswith(f"{m1}\tclient={c1}\t") and listed[0].endswith("shard=1")
        assert listed[1].startswith(f"{m2}\tclient={c2}\t") and listed[1].endswith("shard=2")

        # Shard 1 does not answer (nothing listens on port 1): it is named in one line,
        # shard 2 is still listed and served, and the command says it was incomplete.
        monkeypatch.setenv("DB_SHARD_1", "postgresql://postgres@127.0.0.1:1/down")
        assert reconcile.main([]) == 1
        out, err = capsys.readouterr()
        assert out.splitlines() == [listed[1]]
        assert err.startswith("shard 1 could not be read: ") and "Traceback" not in err
        assert err.count("\n") == 1, err
        # Resolved by id alone, on whichever shard holds it, the down one tried first.
        assert reconcile.main(["sent", str(m2), "ses-0002"]) == 0
        assert reconcile.main(["sent", str(m2)]) == 1  # no longer flagged
        err = capsys.readouterr().err
        assert f"message {m2} is not flagged for reconciliation where it was looked" in err
        assert "(shard 1 did not answer)" in err
        _env(sharded, monkeypatch)
        status = api.get(f"/email/{m2}").json()
        assert (status["status"], status["provider_message_id"]) == ("sent", "ses-0002")

        # A requeue is staged in the outbox of the message's own shard, for its relay.
        def staged() -> int:
            with router.session_for(c1, write=False) as s:
                return s.scalar(select(func.count()).where(OutboxRecord.message_id == m1)) or 0

        before = staged()
        assert reconcile.main(["requeue", str(m1)]) == 0
        assert api.get(f"/email/{m1}").json()["status"] == "queued"
        assert staged() == before + 1
        assert reconcile.main(["failed", "999999"]) == 1  # on no shard: named, not a trace
        assert "message 999999 is not flagged" in capsys.readouterr().err
        with router.shards()["2"].session() as s:
            row = s.get(EmailMessage, m2)
            assert row is not None and not row.needs_reconciliation
    assert mailer.per_message() == {m1: 1, m2: 1}
