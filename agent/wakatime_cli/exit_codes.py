"""wakatime-cli's exit codes, which plugins act on."""

from __future__ import annotations


class ExitCode:
    """wakatime-cli's exit codes (pkg/exitcode), which plugins act on."""

    SUCCESS = 0
    ERR_GENERIC = 1
    # The API could not be reached or failed: the heartbeats were queued offline.
    ERR_API = 102
    ERR_CONFIG_FILE_PARSE = 103
    ERR_AUTH = 104
    # `--config-read` of a key that is empty or missing.
    ERR_CONFIG_FILE_READ = 110
    ERR_CONFIG_FILE_WRITE = 111
    ERR_BACKOFF = 112
