// Tests for TEDModel.
