// Tests for TEDConfig.
