"""Kafka delivery (QUEUE_BACKEND=kafka): outbox, relay, the sender fleet, dead letters.

outbox.py    the outbox table; `stage()` in the message's transaction; the sweeper's half
relay.py     publishes outbox rows (idempotent producer), marks them on delivery
records.py   the record format (key client_id; message_id, client_id) and trace headers
consumer.py  one fleet member: records -> pipeline, offsets stored after the outcome
offsets.py   the committable offset when records finish out of order
topics.py    topic names and the admin path (created on MSK, auto-created on the mock)
clients.py   librdkafka configuration: brokers, TLS, MSK IAM, the mock cluster
backend.py   the API's queue backend
consume.py   `coldreach-app consume`
"""
