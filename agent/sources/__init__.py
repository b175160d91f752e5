"""Where activity comes from, besides the watcher and the socket."""
