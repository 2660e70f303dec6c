"""The kit's benchmark: `make bench` (python -m bench). See bench/run.py."""
