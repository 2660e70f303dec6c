"""`python -m labkit ...` from the repository root.

The package is scripts/labkit (the Makefile puts scripts/ on PYTHONPATH);
this shim puts it there too and runs it, so the command works as written.
Run it with the kit's venv (.venv/bin/python), which has its dependencies.
"""
import os
import runpy
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts"))
    runpy.run_module("labkit", run_name="__main__", alter_sys=True)
