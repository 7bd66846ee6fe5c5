// Tests for TEDEngine.
