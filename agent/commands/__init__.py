"""One module per `agent` command; each has `main(argv) -> int`."""
