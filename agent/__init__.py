"""heartbeat-agent: coding activity recorded as WakaTime heartbeats, delivered by one daemon.

Nothing heavy is imported here: the plugin-facing fast path imports this package.
"""

__version__ = "0.1.0"
