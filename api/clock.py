"""The one clock: every stored time comes from here, in UTC, so that tests
can travel it (time-machine) and no timestamp is naive."""

from datetime import UTC, datetime


def utcnow():
    return datetime.now(UTC)


def from_timestamp(seconds):
    return datetime.fromtimestamp(seconds, UTC)


def as_utc(value):
    # SQLite hands timestamps back without their zone; they were stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
