#!/usr/bin/env python3
"""A stand-in for IndexTTS2's webui.py, standard library only. Not IndexTTS2: no model, no GPU.

It exists so that the health check's plumbing (health-check.sh, readiness.py,
smoke.py, report-failure.sh) can run where neither Gradio nor a GPU can: in
the unit tests, and in the kit's lab on Concourse, whose task image is a bare
Debian with Python 3. It takes webui.py's command line (--host, --port,
--model_dir, --version), refuses to start when the model directory lacks the
files upstream's webui.py checks, and speaks the part of Gradio 5's HTTP API
that smoke.py uses: GET /config (with gen_single's inputs, keys and
defaults as upstream declares them), POST /gradio_api/upload, POST
/gradio_api/call/gen_single and its event stream, GET /gradio_api/file=.
Its "speech" is a syllable-paced tone whose length follows the text
(tests/unit/standins/gradio_webui.py does the same on real Gradio).

The behaviour is the first word of the file `standin-mode` in the working
directory (the stand-in repository's root), else STANDIN_MODE, else speech;
a second word there gives the seconds instead of the variable:
  speech [S]       load for S s (STANDIN_LOAD_SECONDS, default 2), then serve
  die [S]          print a CUDA error and exit 1 after S s (STANDIN_DIE_AFTER, default 3)
  hang [S]         load for S s, then listen, accept connections, never answer
  silence [S]      serve, but every WAV is silent
"""
import argparse
import json
import math
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RATE = 22050
CHARS_PER_SECOND = {"zh": 4.0, "en": 14.0}
# What upstream's webui.py (v2.0.0) checks in --model_dir before it starts.
REQUIRED = ["bpe.model", "gpt.pth", "config.yaml", "s2mel.pth", "wav2vec2bert_stats.pt"]
EMO_CHOICES = ["Same as the voice reference", "Use an emotion reference audio", "Use emotion vectors"]
PREFIX = "/gradio_api"


def mode_words() -> list[str]:
    try:
        with open("standin-mode", encoding="utf-8") as handle:
            words = handle.read().split()
            if words:
                return words
    except OSError:
        pass
    return [os.environ.get("STANDIN_MODE", "speech")]


def mode() -> str:
    return mode_words()[0]


def seconds(variable: str, default: str) -> float:
    """A second word in standin-mode, else the environment, else the default."""
    words = mode_words()
    return float(words[1] if len(words) > 1 else os.environ.get(variable, default))


def synthesise(text: str, silent: bool, folder: str) -> str:
    lang = "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in text) else "en"
    length = len("".join(text.split())) / CHARS_PER_SECOND[lang]
    frames = bytearray()
    for n in range(int(length * RATE)):
        t = n / RATE
        syllable = max(0.0, math.sin(math.pi * ((t * 4.0) % 1.0)))
        value = 0.0 if silent else 0.35 * syllable * math.sin(2 * math.pi * 180 * t) + \
            0.1 * math.sin(2 * math.pi * 360 * t)
        frames += int(max(-1.0, min(1.0, value)) * 32767).to_bytes(2, "little", signed=True)
    path = os.path.join(folder, f"spk_{uuid.uuid4().hex[:12]}.wav")
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(bytes(frames))
    return path


def app_config() -> dict:
    """gen_single's inputs in upstream's order, with its component keys and defaults."""
    components, inputs = [], []

    def add(kind, value=None, key=None, **props):
        cid = len(components) + 1
        props = dict(props, value=value)
        if key:
            props["key"] = key
        components.append({"id": cid, "type": kind, "props": props})
        return cid

    inputs.append(add("radio", EMO_CHOICES[0], choices=EMO_CHOICES))
    inputs.append(add("audio", None, "prompt_audio"))
    inputs.append(add("textarea", "", "input_text_single"))
    inputs.append(add("audio", None))
    inputs.append(add("slider", 0.65))
    inputs += [add("slider", 0.0) for _ in range(8)]
    inputs.append(add("textbox", ""))
    inputs.append(add("checkbox", False))
    inputs.append(add("slider", 120, "max_text_tokens_per_segment"))
    inputs += [add("checkbox", True), add("slider", 0.8), add("slider", 30), add("slider", 0.8),
               add("number", 0.0), add("slider", 3), add("number", 10.0), add("slider", 1500, "max_mel_tokens")]
    output = add("audio", None, "output_audio")
    return {"version": "stand-in (stdlib_webui.py, not Gradio)", "api_prefix": PREFIX,
            "components": components,
            "dependencies": [{"id": 0, "api_name": "gen_single", "inputs": inputs, "outputs": [output]}]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--model_dir", default="checkpoints")
    parser.add_argument("--version", default="2")
    parser.add_argument("--fp16", action="store_true")
    args, _unknown = parser.parse_known_args()
    behaviour = mode()
    print(f">> stand-in web UI (stdlib_webui.py, NOT IndexTTS2), mode {behaviour}, pid {os.getpid()}", flush=True)
    missing = [name for name in REQUIRED if not os.path.isfile(os.path.join(args.model_dir, name))]
    if missing:
        print(f"Required file {os.path.join(args.model_dir, missing[0])} does not exist. "
              "Please download it.", flush=True)
        return 1
    print(f">> GPT weights restored from: {os.path.join(args.model_dir, 'gpt.pth')} (stand-in)", flush=True)

    if behaviour == "die":
        time.sleep(seconds("STANDIN_DIE_AFTER", "3"))
        print("RuntimeError: CUDA error: out of memory (stand-in)", flush=True)
        return 1
    time.sleep(seconds("STANDIN_LOAD_SECONDS", "2"))
    if behaviour == "hang":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((args.host, args.port))
        listener.listen(64)
        print(f"* listening on {args.host}:{args.port} and never answering (stand-in)", flush=True)
        held = []
        while True:
            held.append(listener.accept()[0])

    folder = tempfile.mkdtemp(prefix="standin-webui-")
    config = app_config()
    results = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, status, body, kind="application/json"):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def body(self):
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def do_GET(self):
            path = urllib.parse.unquote(self.path)
            if path == "/config":
                self.reply(200, config)
            elif path.startswith(f"{PREFIX}/call/gen_single/"):
                with lock:
                    result = results.pop(path.rsplit("/", 1)[1], None)
                if result is None:
                    self.reply(404, {"error": "unknown event"})
                    return
                kind, payload = result
                data = f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode()
                self.reply(200, data, "text/event-stream")
            elif path.startswith(f"{PREFIX}/file="):
                name = path[len(f"{PREFIX}/file="):]
                if os.path.dirname(os.path.abspath(name)) != folder or not os.path.isfile(name):
                    self.reply(403, {"error": "not a file of this app"})
                    return
                with open(name, "rb") as handle:
                    self.reply(200, handle.read(), "audio/wav")
            else:
                self.reply(404, {"error": "not found"})

        def do_POST(self):
            if self.path == f"{PREFIX}/upload":
                raw = self.body()
                boundary = self.headers.get("Content-Type", "").split("boundary=")[-1].encode()
                part = raw.split(b"--" + boundary)[1]
                content = part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
                path = os.path.join(folder, f"upload_{uuid.uuid4().hex[:12]}.wav")
                with open(path, "wb") as out:
                    out.write(content)
                self.reply(200, [path])
            elif self.path == f"{PREFIX}/call/gen_single":
                data = json.loads(self.body())["data"]
                prompt, text = data[1], data[2]
                event = uuid.uuid4().hex
                if not isinstance(prompt, dict) or not os.path.isfile(prompt.get("path", "")):
                    result = ("error", "no voice prompt")
                else:
                    wav = synthesise(text, mode() == "silence", folder)
                    result = ("complete", [{"__type__": "update", "visible": True,
                                            "value": {"path": wav, "meta": {"_type": "gradio.FileData"}}}])
                with lock:
                    results[event] = result
                self.reply(200, {"event_id": event})
            else:
                self.reply(404, {"error": "not found"})

        def log_message(self, fmt, *values):
            print(f"stand-in: {self.command} {self.path.split('?')[0][:60]}", flush=True)

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"* Running on local URL:  http://{args.host}:{args.port} (stand-in)", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
