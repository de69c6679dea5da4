"""The instant the tests' frozen clocks stand at: the era of the generated data, so that every
expectation is exact and none depends on today's date."""

from datetime import UTC, datetime

NOW = datetime(2016, 12, 1, tzinfo=UTC)
# As `serve --clock` and `generate --until` take it.
NOW_TEXT = NOW.isoformat().replace("+00:00", "Z")
