"""In-memory mailers for in-process tests: record every call, fail on demand."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

from openapi_server.mailer import OutgoingEmail


class RecordingMailer:
    def __init__(self, failures: list[Exception] | None = None, delay_s: float = 0.0) -> None:
        self.calls: list[OutgoingEmail] = []
        self.failures = list(failures or [])
        self.delay_s = delay_s
        self._lock = threading.Lock()

    def send(self, email: OutgoingEmail) -> str:
        with self._lock:
            self.calls.append(email)
            failure = self.failures.pop(0) if self.failures else None
        if self.delay_s:
            import time

            time.sleep(self.delay_s)
        if failure is not None:
            raise failure
        return f"rec-{uuid.uuid4()}"

    def per_message(self) -> Counter[int]:
        return Counter(c.message_id for c in self.calls)
