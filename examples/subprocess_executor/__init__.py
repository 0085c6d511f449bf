"""A second executor, independent of the reference: see server.py."""
