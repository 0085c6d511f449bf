"""A manager compatible with the original deployment: allocates executors and proxies sessions.

It reads ``container_config.json`` (container id -> URL and type), hands executors out per type,
restarts them on deallocation, and forwards ``/session/{id}/...`` to the executor unchanged, so
that the kit's verdict through the manager equals its verdict on the executor itself.
"""
