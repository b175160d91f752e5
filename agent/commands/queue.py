"""`agent queue count|list|flush|retry|purge|export`: the offline queue and the heartbeats
the servers refused (kept aside with their reason).

Everything but `flush` reads or edits the database directly: it is safe while the daemon
runs (WAL mode, one transaction per change). `flush` asks the daemon to deliver now and
follows its progress; with no daemon it delivers in this process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from agent.commands.common import (
    CommandError,
    add_config_option,
    run_command,
    settings_from,
    setup_logging,
)

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.pipeline.store import DeliveryRow, HeartbeatStore

LIST_LIMIT = 20
FLUSH_POLL = 0.2  # seconds between progress reads while the daemon delivers
BAR_WIDTH = 30


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="agent queue", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    count = _command(commands, "count", "undelivered and rejected heartbeats per destination")
    count.add_argument("--json", action="store_true", help="one JSON object")

    listing = _command(commands, "list", "the oldest queued heartbeats and the rejected ones")
    which = listing.add_mutually_exclusive_group()
    which.add_argument("--queued", action="store_true", help="only the queued ones")
    which.add_argument("--rejected", action="store_true", help="only the rejected ones")
    listing.add_argument("--limit", type=int, default=LIST_LIMIT, help="rows of each (20)")
    listing.add_argument("--json", action="store_true", help="JSON lines, one a heartbeat")

    _command(commands, "flush", "deliver the queue now, showing progress")

    _command(commands, "retry", "put rejected heartbeats back in the queue")

    purge = _command(commands, "purge", "drop queued (or rejected) heartbeats: never sent")
    export = _command(commands, "export", "write queued (or rejected) heartbeats as JSON lines")
    for sub in (purge, export):
        what = sub.add_mutually_exclusive_group()
        what.add_argument("--rejected", action="store_true", help="the rejected ones instead")
        what.add_argument("--all", action="store_true", help="queued and rejected ones")
    purge.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    export.add_argument("-o", "--output", metavar="FILE", help="write there, not to stdout")

    args = parser.parse_args(argv)
    return run_command(COMMANDS[args.command], args)


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str
) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=summary, description=summary)
    sub.add_argument("--destination", metavar="NAME", help="only this destination")
    add_config_option(sub)
    return sub


# ----- the database ----------------------------------------------------------------------


@contextmanager
def open_store(settings: Settings) -> Iterator[HeartbeatStore | None]:
    """The store, or None when there is no database yet (nothing was ever recorded)."""
    from agent.pipeline.store import StoreError
    from agent.sources.offline_adopt import open_adopted
    from agent.wakatime_cli.offline_queue import requests_waiting

    path = settings.database_path()
    if not path.exists() and not requests_waiting(path):
        yield None
        return
    try:
        store = open_adopted(settings)
    except StoreError as exc:
        raise CommandError(f"cannot open the database: {exc}") from None
    with store:
        yield store


def _known_destination(store: HeartbeatStore | None, name: str | None) -> str | None:
    """The --destination given, checked against the ones the database knows."""
    if name is None:
        return None
    known = store.destinations() if store is not None else {}
    if name not in known:
        listed = ", ".join(known) or "none yet"
        raise CommandError(f"no destination named {name!r} (known: {listed})")
    return name


def _states(args: argparse.Namespace) -> tuple[int, ...]:
    from agent.pipeline.store import QUEUED, REJECTED

    if getattr(args, "all", False):
        return (QUEUED, REJECTED)
    return (REJECTED,) if args.rejected else (QUEUED,)


def _plural(count: int, what: str) -> str:
    return f"{count:,} {what}" + ("" if count == 1 else "s")


# ----- count, list, export -----------------------------------------------------------------


def _count(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    rows: dict[str, dict[str, int]] = {}
    with open_store(settings) as store:
        destination = _known_destination(store, args.destination)
        if store is not None:
            names = [destination] if destination else list(store.destinations())
            for name in names:
                counts = store.counts(name)
                rows[name] = {
                    "queued": counts.queued,
                    "rejected": counts.rejected,
                    "delivered": counts.delivered,
                }
    totals = {key: sum(row[key] for row in rows.values()) for key in ("queued", "rejected")}
    if args.json:
        print(json.dumps({**totals, "destinations": rows}, indent=2))
        return 0
    print(f"{_plural(totals['queued'], 'heartbeat')} queued, {totals['rejected']:,} rejected")
    if len(rows) > 1:
        width = max(len(name) for name in rows)
        for name, row in rows.items():
            print(f"  {name:<{width}}  {row['queued']:>9,} queued  {row['rejected']:>7,} rejected")
    return 0


def _list(args: argparse.Namespace) -> int:
    from agent.pipeline.store import QUEUED, REJECTED

    settings = settings_from(args)
    sections = [(QUEUED, "Queued, oldest first"), (REJECTED, "Rejected by the server")]
    if args.queued or args.rejected:
        sections = [section for section in sections if (section[0] == REJECTED) == args.rejected]
    with open_store(settings) as store:
        destination = _known_destination(store, args.destination)
        for state, title in sections:
            found = store.deliveries([state], destination, args.limit) if store else ()
            rows = list(found)
            if args.json:
                for row in rows:
                    print(json.dumps(row.to_json(), ensure_ascii=False))
                continue
            total = store.counts(destination) if store is not None else None
            in_all = (total.queued if state == QUEUED else total.rejected) if total else 0
            print(f"{title} ({in_all:,} in all{', first ' + str(len(rows)) if rows else ''}):")
            print("\n".join(_row_text(row) for row in rows) if rows else "  (none)")
    return 0


def _row_text(row: DeliveryRow) -> str:
    hb = row.heartbeat
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(hb.get("time", 0))))
    project = hb.get("project") or "-"
    line = f"  {when}  {row.destination}  {project}  {hb.get('entity', '?')}"
    if row.attempts:
        line += f"  ({_plural(row.attempts, 'attempt')})"
    if row.reason:
        line += f"\n      {row.reason}"
    return line


def _export(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    with open_store(settings) as store, _output(args.output) as out:
        destination = _known_destination(store, args.destination)
        written = 0
        if store is not None:
            for row in store.deliveries(_states(args), destination):
                out.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")
                written += 1
    if args.output:
        print(f"{_plural(written, 'heartbeat')} written to {args.output}", file=sys.stderr)
    return 0


@contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    try:
        with open(path, "w", encoding="utf-8") as out:
            yield out
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc}") from None


# ----- purge and retry -------------------------------------------------------------------


def _purge(args: argparse.Namespace) -> int:
    from agent.pipeline.store import QUEUED

    settings = settings_from(args)
    states = _states(args)
    with open_store(settings) as store:
        destination = _known_destination(store, args.destination)
        counts = store.counts(destination) if store is not None else None
        if counts is None:
            print("Nothing to purge: no heartbeats were ever recorded.")
            return 0
        queued = counts.queued if QUEUED in states else 0
        rejected = counts.rejected if len(states) > 1 or QUEUED not in states else 0
        what = " and ".join(
            text
            for count, text in (
                (queued, _plural(queued, "queued heartbeat")),
                (rejected, _plural(rejected, "rejected heartbeat")),
            )
            if count
        )
        if not what:
            kept = counts.rejected if QUEUED in states and len(states) == 1 else 0
            print(
                f"Nothing to purge: no queued heartbeats. {_plural(kept, 'rejected heartbeat')}"
                " kept aside: `agent queue purge --rejected` drops them."
                if kept
                else "Nothing to purge."
            )
            return 0
        where = f" for {destination}" if destination else ""
        if not args.yes and not _confirm(f"Drop {what}{where}? They will never be sent. [y/N] "):
            print("Nothing purged.", file=sys.stderr)
            return 1
        dropped = store.purge(states, destination)
    print(f"Purged {_plural(dropped, 'heartbeat')}{where}.")
    return 0


def _confirm(question: str) -> bool:
    print(question, end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    if not answer:
        print(file=sys.stderr)
    return answer.strip().lower() in ("y", "yes")


def _retry(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    with open_store(settings) as store:
        destination = _known_destination(store, args.destination)
        requeued = store.requeue_rejected(destination) if store is not None else 0
    print(f"{_plural(requeued, 'rejected heartbeat')} back in the queue.")
    if requeued:
        answer = _ask_daemon(settings, {"op": "flush"})
        if answer is None:
            print("No daemon is running: `agent queue flush` delivers them now.")
    return 0


# ----- flush -------------------------------------------------------------------------------


def _ask_daemon(settings: Settings, message: dict[str, Any]) -> dict[str, Any] | None:
    """The daemon's answer, or None when no daemon runs."""
    from agent.ipc.client import DaemonUnavailable, request

    try:
        answer = request(message, settings.socket_path(), timeout=30.0)
    except DaemonUnavailable:
        return None
    if not answer.get("ok"):
        raise CommandError(f"the daemon answered: {answer.get('error')}")
    return answer


def _flush(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    setup_logging("warning", args.verbose)
    with open_store(settings) as store:
        _known_destination(store, args.destination)
    before = _ask_daemon(settings, {"op": "status"})
    if before is None:
        return _flush_here(settings, args.destination)
    _ask_daemon(settings, {"op": "flush"})
    return _follow_daemon(settings, before, args.destination)


def _follow_daemon(settings: Settings, before: dict[str, Any], only: str | None) -> int:
    """Read the daemon's status until its queue is empty or every destination that still
    has heartbeats is stuck (paused, or failing and waiting to retry)."""

    def settled(status: dict[str, Any]) -> int:
        return sum(d["delivered"] + d["rejected"] for d in _chosen(status, only))

    progress = Progress()
    start = settled(before)
    while True:
        status = _ask_daemon(settings, {"op": "status"})
        if status is None:
            raise CommandError("the daemon stopped while delivering")
        chosen = _chosen(status, only)
        remaining = sum(d["queued"] for d in chosen)
        done = settled(status) - start
        progress.show(done, done + remaining)
        waiting = [d for d in chosen if d["queued"]]
        stuck = [d for d in waiting if d["paused"] or d["last_error"]]
        if not waiting or len(stuck) == len(waiting):
            progress.close()
            return _flush_report(done, [(d["name"], d["queued"], _why(d)) for d in stuck])
        time.sleep(FLUSH_POLL)


def _chosen(status: dict[str, Any], only: str | None) -> list[dict[str, Any]]:
    return [d for d in status["destinations"] if only is None or d["name"] == only]


def _why(destination: dict[str, Any]) -> str:
    return str(destination["paused"] or destination["last_error"])


def _flush_here(settings: Settings, only: str | None) -> int:
    """No daemon: deliver in this process, one batch after another, until each destination's
    queue is empty or the server or the credentials stop it."""
    from agent.delivery.deliveries import build_sender
    from agent.delivery.sender import Step
    from agent.pipeline.destinations import configured_destinations

    destinations = configured_destinations(settings)
    chosen = [d for d in destinations if only is None or d.name == only]
    with open_store(settings) as store:
        pending = {d.name: store.counts(d.name).queued if store else 0 for d in chosen}
    total = sum(pending.values())
    print(f"No daemon is running; delivering {_plural(total, 'heartbeat')} from here.")
    progress = Progress()
    done = 0
    stuck: list[tuple[str, int, str]] = []
    for destination in chosen:
        if not pending[destination.name]:
            continue
        if destination.problem:  # a URL nothing may be sent to (agent.pipeline.destinations)
            stuck.append((destination.name, pending[destination.name], destination.problem))
            continue
        sender = build_sender(settings, destination)
        try:
            while (result := sender.step()).step is Step.PROGRESS:
                done += result.delivered + result.rejected
                progress.show(done, total)
            if result.step is not Step.IDLE:
                left = sender.store.counts(destination.name).queued
                why = sender.status.paused or sender.status.last_error or "asked to wait"
                stuck.append((destination.name, left, why))
        finally:
            sender.close()
    progress.close()
    return _flush_report(done, stuck)


def _flush_report(done: int, stuck: list[tuple[str, int, str]]) -> int:
    if not done and not stuck:
        print("The queue is empty: nothing to deliver.")
        return 0
    print(f"{_plural(done, 'heartbeat')} settled (delivered, or refused and kept aside).")
    for name, left, why in stuck:
        print(f"{name}: {_plural(left, 'heartbeat')} still queued: {why}")
    return 1 if stuck else 0


class Progress:
    """A progress bar on stderr when it is a terminal; silent otherwise."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.shown = False
        self.live = stream.isatty()

    def show(self, done: int, total: int) -> None:
        if not self.live or total <= 0:
            return
        filled = round(BAR_WIDTH * min(done / total, 1.0))
        bar = "█" * filled + "░" * (BAR_WIDTH - filled)
        self.stream.write(f"\r  {bar} {done:,}/{total:,}")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "count": _count,
    "list": _list,
    "flush": _flush,
    "retry": _retry,
    "purge": _purge,
    "export": _export,
}
