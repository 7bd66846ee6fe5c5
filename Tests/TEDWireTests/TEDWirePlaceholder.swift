// Tests for TEDWire.
