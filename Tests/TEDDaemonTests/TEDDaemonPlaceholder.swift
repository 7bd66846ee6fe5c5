// Tests for TEDDaemon.
