"""A bare worker process for the race test: processes the given ids in its own random order.

Usage: python app_race_worker.py <id> <id> ...   (settings from the environment)
"""

from __future__ import annotations

import random
import sys
from collections import Counter

from openapi_server.config import Settings
from openapi_server.db import Database
from openapi_server.mailer import make_mailer
from openapi_server.pipeline import Pipeline


def main() -> None:
    settings = Settings.from_env()
    ids = [int(a) for a in sys.argv[1:]]
    random.shuffle(ids)
    pipeline = Pipeline(Database(settings), make_mailer(settings), settings)
    outcomes = Counter(pipeline.process(i).outcome.value for i in ids)
    print(dict(outcomes), flush=True)


if __name__ == "__main__":
    main()
