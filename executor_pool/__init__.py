"""The deployment of a pool of executors: the compose generator and the manager.

``executor-pool compose ...`` writes a compose file and ``container_config.json`` for a pool;
``executor-pool manager --config container_config.json`` (``python -m executor_pool.manager``)
hands its executors out and proxies their sessions. Neither imports the kit.
"""
