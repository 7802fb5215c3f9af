"""A bare worker process for the race test: processes the given ids in its own random order.

Usage: python app_race_worker.py <id> <id> ...   (settings from the environment)

Start gate: once imported and connected, the worker prints `ready` and waits for a line
on stdin, so the test can release every racer at the same moment.
"""

from __future__ import annotations

import random
import sys
from collections import Counter

from openapi_server.config import Settings
from openapi_server.db import Database
from openapi_server.mailer import make_mailer
from openapi_server.pipeline import Pipeline
from sqlalchemy import text


def main() -> None:
    settings = Settings.from_env()
    ids = [int(a) for a in sys.argv[1:]]
    random.shuffle(ids)
    db = Database(settings)
    pipeline = Pipeline(db, make_mailer(settings), settings)
    with db.primary.connect() as conn:  # the connection is made before the start, not in it
        conn.execute(text("SELECT 1"))
    print("ready", flush=True)
    if sys.stdin.readline() != "go\n":
        sys.exit("no start signal")
    outcomes = Counter(pipeline.process(i).outcome.value for i in ids)
    print(dict(outcomes), flush=True)


if __name__ == "__main__":
    main()
