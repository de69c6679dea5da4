"""Storage: the Protocol the services use, and its Cassandra implementation (the service's only CQL).

base.py         the SessionStore Protocol and the values it takes and returns
cassandra.py    CassandraStore: each operation's statements, back-pressure, execution
statements.py   the prepared statements, as one typed holder
batching.py     rows of a write -> unlogged batches of rows that share their replicas
rows.py         the row factory and the decoding of rollup rows
connection.py   open_cluster (the driver's one configuration) and the store's session
config.py       StoreConfig, what the store reads, and its adapter from Settings
errors.py       StoreError and its kinds; driver exceptions translated into them
tls.py          the client's SSL context; a failed handshake told apart from a node down
schema.py       the tables, as declared for this release
migrations.py   creating and upgrading the schema; its recorded version
replication.py  keyspace replication: parsed, read back, judged
"""
