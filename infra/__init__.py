"""The Cold Reach Pulumi program (one program; the phase is stack config)."""
