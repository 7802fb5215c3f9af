"""The rules of clients, tasks and email, on a SQLAlchemy session and a workspace.

The monolith's routes (impl/default_api_impl.py) and the gRPC services (rpc/) call the
same functions, so phase 3 cannot drift from phases 1 and 2. Every query is scoped to
the caller's workspace; a refusal is a `Refused` (refusals.py).
"""
