"""MissBench harness: trains, evaluates and reports; knows no specific method or dataset."""
