"""Test helpers: files, servers and clusters the tests build and run for real."""
