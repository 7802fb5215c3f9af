"""Phase 3: the Client and Campaign gRPC services and the HTTP edge that calls them.

`gen/` is protoc's output (app/proto/generate.py). The services apply the same rules
as the monolith (operations/); the edge keeps today's HTTP contract and maps gRPC
status codes back to today's HTTP responses (status.py).
"""
