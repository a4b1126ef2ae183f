"""What a reader can narrow a search to: an outlet and a date range. Applied inside the store, so a backend can
use its own indexes (a SQL WHERE in Postgres, a row mask locally) instead of scoring every passage first."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Filters:
    source: str | None = None
    since: str | None = None  # ISO dates, inclusive
    until: str | None = None

    def __bool__(self) -> bool:
        return bool(self.source or self.since or self.until)

    def allows_fields(self, source: str, date: str) -> bool:
        if self.source and self.source.casefold() not in (source or "").casefold():
            return False
        if (self.since or self.until) and not date:
            return False
        if self.since and date < self.since:
            return False
        return not (self.until and date > self.until)
