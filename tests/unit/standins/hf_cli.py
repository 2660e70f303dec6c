#!/usr/bin/env python3
"""A stand-in for the Hugging Face CLI's `download`, for ensure_weights.py's tests.

Not the hub: it records each invocation (arguments and HF_ENDPOINT) in
$HF_STANDIN_CALLS and writes the files named in $HF_STANDIN_FILES
(space-separated; a trailing / makes a directory with one file) into
--local-dir, then exits with $HF_STANDIN_EXIT (default 0).
"""
import json
import os
import sys

args = sys.argv[1:]
with open(os.environ["HF_STANDIN_CALLS"], "a", encoding="utf-8") as calls:
    calls.write(json.dumps({"args": args, "endpoint": os.environ.get("HF_ENDPOINT", "")}) + "\n")
local_dir = args[args.index("--local-dir") + 1]
for name in os.environ.get("HF_STANDIN_FILES", "").split():
    path = os.path.join(local_dir, name)
    if name.endswith("/"):
        os.makedirs(path, exist_ok=True)
        path = os.path.join(path, "model.safetensors")
    with open(path, "wb") as out:
        out.write(b"\0" * 1024)
print(f"hf stand-in (tests/unit/standins/hf_cli.py): NOT the hub; wrote {os.environ.get('HF_STANDIN_FILES', '')!r}",
      file=sys.stderr)
sys.exit(int(os.environ.get("HF_STANDIN_EXIT", "0")))
