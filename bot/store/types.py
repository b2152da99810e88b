"""Column types shared by the tables."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator, UserDefinedType

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(value: datetime) -> int:
    """An aware instant as whole microseconds since 1970-01-01 UTC (how SQLite stores it)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: instants must be timezone-aware")
    return (value - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def from_stored(value: object) -> datetime | None:
    """What a SQLite instant column holds, as an aware instant: integer microseconds (since
    migration 0014), or the naive UTC text written before it."""
    if value is None:
        return None
    if isinstance(value, int):
        return from_micros(value)
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=_UTC)
    raise TypeError(f"not a stored instant: {value!r}")


class _SQLiteInstant(UserDefinedType):
    """The SQLite side of ``UTCDateTime``: declared ``DATETIME`` (NUMERIC affinity, as before), the
    value an INTEGER the driver passes through untouched."""

    cache_ok = True

    def get_col_spec(self, **_kw) -> str:
        return "DATETIME"


class UTCDateTime(TypeDecorator):
    """An instant stored in UTC and always read back timezone-aware.

    PostgreSQL keeps it as ``timestamptz``. SQLite has no such type: the value is stored as
    INTEGER microseconds since the Unix epoch (8 bytes in the row and in every index, against 26
    for the text form used before migration 0014), so comparisons and index range scans stay
    correct and exact to the microsecond.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLiteInstant())
        return dialect.type_descriptor(self.impl)

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: instants must be timezone-aware")
        if dialect.name == "sqlite":
            return to_micros(value)
        return value.astimezone(_UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "sqlite":
            return from_stored(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=_UTC)
        return value.astimezone(_UTC)
