"""From the queue to the servers: one delivery loop a destination, auth, the read API."""
