"""The embedded default's SQLite file is written by the web server and four workers at once: a transaction that reads
and then writes while another process's write commits must wait for it, not fail with "database is locked" (seen
as a failed `datareports.schedule_contamination` on a fresh `make run`)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from hub.accounts.models import User

pytestmark = [pytest.mark.embedded,
              pytest.mark.skipif(connection.vendor != "sqlite", reason="the embedded default's SQLite locking")]


@pytest.mark.django_db(transaction=True)
def test_a_read_then_write_waits_for_a_write_another_connection_commits_meanwhile():
    holding, read_done = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def other_writer() -> None:
        try:
            with transaction.atomic():
                User.objects.create(username="first-writer")
                holding.set()
                read_done.wait(10)  # commits only after the main connection has read
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
            holding.set()
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_writer)
    thread.start()
    assert holding.wait(10)
    # The other connection commits half a second from now, while this one is in its transaction (having read first,
    # when that transaction is deferred).
    threading.Timer(0.5, read_done.set).start()
    with transaction.atomic():
        User.objects.count()
        User.objects.create(username="second-writer")
    thread.join(10)
    assert not failures, failures
    assert set(User.objects.values_list("username", flat=True)) >= {"first-writer", "second-writer"}
