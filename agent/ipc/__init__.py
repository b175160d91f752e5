"""Local IPC between plugins and the daemon: a Unix socket speaking JSON lines."""
