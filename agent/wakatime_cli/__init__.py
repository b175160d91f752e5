"""wakatime-cli's interface for the plugins: flags, stdin extras, ~/.wakatime.cfg, the
offline spool. Standard library only: every plugin save runs it."""
