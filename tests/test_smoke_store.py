from bot.store.db import schema_status


def test_migrated_database_is_current(engine):
    current, rev, head = schema_status(engine)
    assert current and rev == head
