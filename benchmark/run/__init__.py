"""What happens to one run and to a sweep: expansion, launchers, the results store, data,
training, evaluation."""
