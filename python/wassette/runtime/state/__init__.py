"""Where the state lives when it is not (only) the local directory: the
shared state of a fleet of replicas (`postgres.py`), moved record by record
(`records.py`), its secrets sealed (`sealed.py`), its tables migrated
(`schema.py`), and copied to and from a local directory (`transfer.py`)."""
