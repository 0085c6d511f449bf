"""The conformance suite: one module per requirement area of contract v1."""
