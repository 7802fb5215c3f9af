"""Cold Reach's ComponentResources, plain pulumi-aws underneath (no awsx, no pulumi-eks)."""
