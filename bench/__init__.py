"""`make bench`: the API under load (bench/run.py) and its CPU per request
in process (bench/cpu.py). Figures are reported, never asserted."""
