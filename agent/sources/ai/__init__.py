"""AI coding activity read from the AI tools' own transcripts (Claude Code, Codex CLI,
Gemini CLI, opencode, Cursor agent, GitHub Copilot CLI), incrementally, and the
classifier that tells an AI's file writes from a person's.

The narrow interface: `AiActivitySource(sink, ...)` turns transcript growth into
`Heartbeat` objects handed to `sink` (the daemon's ingest, so privacy rules and detection
apply as for any plugin heartbeat) and records a file's offset only once the sink says the
heartbeats are durable. `sync_once` does the same in one pass without a daemon.
"""

from agent.sources.ai.attribution import WriteClassifier
from agent.sources.ai.source import AiActivitySource, ai_sync_disabled, sync_once

__all__ = ["AiActivitySource", "WriteClassifier", "ai_sync_disabled", "sync_once"]
