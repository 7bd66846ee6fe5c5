// Tests for TEDLinux.
