"""Browser tests reuse the end-to-end fixtures: the real `serve` against the real Cassandra."""

from tests.e2e.conftest import service_factory  # noqa: F401  (a fixture, used by name)
