// Tests for TEDVici.
