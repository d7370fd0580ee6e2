"""Reliability tests: power loss, I/O faults, damaged directories, crash soak."""
