"""Cold Reach API server (laid out as an OpenAPI-generator python-fastapi server)."""
