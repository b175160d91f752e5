"""The machine facts every benchmark prints beside its figures."""

from __future__ import annotations

import datetime
import os
import platform


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (
        f"{datetime.date.today().isoformat()} · {os.cpu_count()} cores ({cpu}) · "
        f"{platform.system()} {platform.release()} · Python {platform.python_version()}"
    )
