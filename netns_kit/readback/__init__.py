"""What the kernel holds, read back through ``ip -j`` (and ``tc -j``): the readers, the
one-process-per-namespace snapshot, and tables of it for terminals and notebooks."""
