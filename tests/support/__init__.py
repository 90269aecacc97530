"""Helpers shared by the tests: services, the test relying parties, sign-in drivers, servers."""
