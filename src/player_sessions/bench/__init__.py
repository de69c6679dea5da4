"""`player-sessions bench`: a reproducible benchmark of the service against a running Cassandra.

Scenarios (see docs/performance.md for the latest figures and how to read them):

1. ingest ceiling: the rows the service writes for N events, written straight from Python processes
   (`services.ingest.store_events` on `CassandraStore`, and raw prepared statements), at the best
   concurrency found;
2. ingest through the HTTP API at several batch sizes and client concurrencies, by separate client
   processes, with latency percentiles and the service's CPU and memory;
3. queries (a player's last sessions, starts per country) on generated data of each size, without
   and with concurrent ingest;
4. growth: how load rate, query latency and disk use change from the smaller size to the larger.

Modules: `stats` and `report` are pure (unit tested); `dataset` makes the events (via
`player_sessions.datagen.generate`); `direct` holds the writer processes; `httpload` the HTTP client
processes; `procstat` reads /proc; `machine` describes the host and Cassandra; `runner` runs the
scenarios; `cli` is the command line. Our own `serve` processes are started and stopped by
`player_sessions.service_process`.

Nothing heavy is imported here: client processes are spawned and import only what they need.
"""
