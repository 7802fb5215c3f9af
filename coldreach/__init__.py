"""Cold Reach infrastructure tooling: the offline runtime and the `coldreach` command."""
