"""A lab's memory: the journal (write-ahead record, undo log, rollback, signal shield)
and the registry (records and locks on disk, recovery after a crash)."""
