"""The heartbeat's way from a source to the queue: build (detect, privacy), route, store."""
