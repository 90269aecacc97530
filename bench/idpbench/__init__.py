"""The benchmark behind bench/run.py, in parts: load, measurement, deployment, phases, report, profiles."""
