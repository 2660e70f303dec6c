#!/usr/bin/env python3
"""A stand-in for webui.py's start-up, for readiness.py's tests. Not IndexTTS2.

It models what the readiness script must tell apart: a model that loads for
--load seconds before the port opens (the real webui.py loads the model,
then calls demo.launch()), a start that dies with a CUDA error, a port that
accepts connections and never answers, and a port that answers 503 first.
The moment the port starts answering /config is written to --ready-file
as time.time(), the moment of death to --died-file.
"""
import argparse
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def stamp(path):
    if path:
        with open(path + ".tmp", "w") as out:
            out.write(repr(time.time()))
        os.replace(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--load", type=float, default=0.0, help="seconds of model loading before listening")
    parser.add_argument("--die-after", type=float, help="exit 1 after this many seconds, never ready")
    parser.add_argument("--hang", action="store_true", help="listen, accept, never answer")
    parser.add_argument("--unavailable-for", type=float, default=0.0, help="answer 503 this long first")
    parser.add_argument("--ready-file")
    parser.add_argument("--died-file")
    args = parser.parse_args()
    started = time.time()
    print(">> GPT weights restored from: checkpoints/gpt.pth", flush=True)

    def die():
        print("RuntimeError: CUDA error: out of memory (stand-in)", flush=True)
        stamp(args.died_file)
        os._exit(1)

    if args.die_after is not None:
        threading.Timer(args.die_after, die).start()
    time.sleep(args.load)
    if args.hang:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", args.port))
        listener.listen(64)
        held = []
        while True:
            held.append(listener.accept()[0])   # keep it open, say nothing

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/config":
                self.send_error(404)
            elif time.time() - opened < args.unavailable_for:
                self.send_error(503)
            else:
                body = json.dumps({"version": "stand-in", "components": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    opened = time.time()
    if args.unavailable_for:
        threading.Timer(args.unavailable_for, stamp, [args.ready_file]).start()
    else:
        stamp(args.ready_file)
    print(f"* Running on local URL:  http://127.0.0.1:{args.port} after {opened - started:.1f}s", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
