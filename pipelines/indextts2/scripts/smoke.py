#!/usr/bin/env python3
"""Prove that the IndexTTS2 web UI synthesises speech, through its own API.

For every case (one Chinese and one English sentence by default) the script
uploads the voice prompt, calls the web UI's generate endpoint (Gradio's
`gen_single`) with the UI's own default for every other input, downloads the
WAV it returns and checks it: a readable PCM WAV, a length plausible for the
text, not silence, not clipped noise. The WAVs and a JSON report are written
to --out-dir so the build keeps them.

    smoke.py --url http://127.0.0.1:7860 --voice examples/voice_01.wav \
             --out-dir smoke-output

The inputs are found in the app's /config (the dependency whose api_name is
--api-name), not hard-coded, so a web UI that gains or reorders controls is
still called correctly; the voice prompt and the text are found by their
component keys (prompt_audio, input_text_single), else by type.

Exit status: 0 every case passed, 1 a case failed, 2 usage.
Standard library only (HTTP, SSE and WAV parsing included).
"""
import argparse
import array
import json
import math
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import wave

DEFAULT_CASES = [
    ("zh", "你好，这是一次语音合成服务的冒烟测试，请确认声音清晰自然。"),
    ("en", "Hello, this is a smoke test of the speech synthesis service."),
]
# Typical speaking rates: Mandarin about four characters a second, English
# about fourteen characters (two and a half words) a second.
CHARS_PER_SECOND = {"zh": 4.0, "en": 14.0}
TEXT_TYPES = ("textbox", "textarea")


class SmokeFailure(Exception):
    """A check failed; the message says which and by how much."""


class GradioClient:
    """Gradio 4/5's HTTP API: /config, upload, call + SSE result, file download."""

    def __init__(self, base_url: str, timeout: float):
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.prefix = ""

    def _open(self, request, timeout=None):
        return urllib.request.urlopen(request, timeout=timeout or self.timeout)

    def config(self) -> dict:
        with self._open(f"{self.base}/config") as response:
            config = json.load(response)
        # Gradio 5 serves its API under /gradio_api; Gradio 4 at the root.
        self.prefix = config.get("api_prefix", "") or ""
        return config

    def upload(self, path: str) -> dict:
        boundary = uuid.uuid4().hex
        name = os.path.basename(path)
        with open(path, "rb") as handle:
            content = handle.read()
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + \
            f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(f"{self.base}{self.prefix}/upload", data=body, method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with self._open(request) as response:
            paths = json.load(response)
        if not isinstance(paths, list) or not paths:
            raise SmokeFailure(f"upload of {path} answered {paths!r}")
        return {"path": paths[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}

    def call(self, api_name: str, data: list, timeout: float) -> list:
        """Run one prediction and return its output list."""
        request = urllib.request.Request(
            f"{self.base}{self.prefix}/call/{api_name}", method="POST",
            data=json.dumps({"data": data}).encode(), headers={"Content-Type": "application/json"})
        with self._open(request) as response:
            event_id = json.load(response)["event_id"]
        end = time.monotonic() + timeout
        url = f"{self.base}{self.prefix}/call/{api_name}/{event_id}"
        # Gradio sends a heartbeat every 15 s while the job runs, so a read
        # that waits much longer than that means the server hung.
        try:
            with self._open(url, timeout=min(timeout, 60.0)) as response:
                for event, payload in sse_events(response):
                    if event == "complete":
                        return json.loads(payload)
                    if event == "error":
                        raise SmokeFailure(f"{api_name} failed on the server: {payload}")
                    if time.monotonic() > end:
                        break
                else:
                    raise SmokeFailure(f"{api_name}: the event stream ended without a result")
        except TimeoutError:
            pass
        raise SmokeFailure(f"{api_name} gave no result within {timeout:.0f}s")

    def download(self, file_data: dict, dest: str) -> None:
        # Always from the server we called, whatever host its url names.
        path = urllib.parse.quote(file_data["path"])
        with self._open(f"{self.base}{self.prefix}/file={path}") as response, open(dest, "wb") as out:
            while chunk := response.read(1 << 16):
                out.write(chunk)


def sse_events(stream):
    """Yield (event, data) from a server-sent event stream."""
    event, data = "message", []
    for raw in stream:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    if data:
        yield event, "\n".join(data)


def find_dependency(config: dict, api_name: str) -> dict:
    for dependency in config.get("dependencies", []):
        if dependency.get("api_name") == api_name:
            return dependency
    names = sorted(str(d.get("api_name")) for d in config.get("dependencies", []) if d.get("api_name"))
    raise SmokeFailure(f"the web UI has no API named {api_name!r} (it has: {', '.join(names) or 'none'})")


def pick(inputs: list[dict], key: str, types: tuple[str, ...], what: str) -> int:
    """Index of the input with this component key, else of the first of these types."""
    for index, component in enumerate(inputs):
        if component.get("props", {}).get("key") == key:
            return index
    for index, component in enumerate(inputs):
        if component.get("type") in types:
            return index
    raise SmokeFailure(f"no {what} input ({key} or {'/'.join(types)}) in the API")


def build_inputs(config: dict, api_name: str, text: str, voice: dict) -> list:
    """Every input at the UI's default, with the voice prompt and the text set."""
    components = {c["id"]: c for c in config.get("components", [])}
    dependency = find_dependency(config, api_name)
    inputs = [components.get(cid, {"id": cid}) for cid in dependency.get("inputs", [])]
    data = [c.get("props", {}).get("value") for c in inputs]
    data[pick(inputs, "prompt_audio", ("audio",), "voice prompt")] = voice
    data[pick(inputs, "input_text_single", TEXT_TYPES, "text")] = text
    return data


def output_file(outputs: list) -> dict:
    """The FileData of the first output, whether plain or inside gr.update()."""
    if not outputs:
        raise SmokeFailure("the API returned no output")
    value = outputs[0]
    if isinstance(value, dict) and value.get("__type__") == "update":
        value = value.get("value")
    if not isinstance(value, dict) or "path" not in value:
        raise SmokeFailure(f"the API returned no audio file: {json.dumps(outputs)[:300]}")
    return value


def read_samples(path: str) -> tuple:
    """Mono samples in [-1, 1] from a PCM WAV (8, 16, 24 or 32 bit)."""
    try:
        with wave.open(path, "rb") as wav:
            params = wav.getparams()
            frames = wav.readframes(params.nframes)
    except (wave.Error, EOFError) as error:
        raise SmokeFailure(f"{path} is not a PCM WAV file: {error}") from error
    width = params.sampwidth
    if width == 1:
        values = [(b - 128) / 128.0 for b in frames]
    elif width in (2, 4):
        samples = array.array("h" if width == 2 else "i")
        samples.frombytes(frames[:len(frames) - len(frames) % width])
        if sys.byteorder == "big":
            samples.byteswap()
        scale = float(1 << (8 * width - 1))
        values = [s / scale for s in samples]
    elif width == 3:
        values = [int.from_bytes(frames[i:i + 3], "little", signed=True) / 8388608.0
                  for i in range(0, len(frames) - 2, 3)]
    else:
        raise SmokeFailure(f"{path}: {width}-byte samples are not PCM")
    channels = params.nchannels
    if channels > 1:
        values = [sum(values[i:i + channels]) / channels for i in range(0, len(values), channels)]
    return params, values


def dbfs(values: list[float]) -> float:
    if not values:
        return -math.inf
    power = sum(v * v for v in values) / len(values)
    return 10 * math.log10(power) if power > 0 else -math.inf


def check_wav(path: str, text: str, lang: str, limits: argparse.Namespace) -> dict:
    """Measure the WAV; raise SmokeFailure naming every check it fails."""
    params, values = read_samples(path)
    rate = params.framerate
    seconds = len(values) / rate if rate else 0.0
    window = max(1, rate // 20)                          # 50 ms
    windows = [values[i:i + window] for i in range(0, len(values), window)]
    voiced = sum(1 for w in windows if dbfs(w) > limits.voiced_dbfs)
    clipped = sum(1 for v in values if abs(v) >= 0.999)
    expected = len("".join(text.split())) / CHARS_PER_SECOND.get(lang, CHARS_PER_SECOND["en"])
    report = {
        "seconds": round(seconds, 3), "expected_seconds": round(expected, 3), "sample_rate": rate,
        "channels": params.nchannels, "rms_dbfs": round(dbfs(values), 1) if values else None,
        "voiced_fraction": round(voiced / len(windows), 3) if windows else 0.0,
        "clipped_fraction": round(clipped / len(values), 5) if values else 0.0,
    }
    problems = []
    if rate < 8000:
        problems.append(f"sample rate {rate} Hz is below 8000 Hz")
    low, high = max(limits.min_seconds, expected * limits.min_ratio), expected * limits.max_ratio
    if not low <= seconds <= high:
        problems.append(f"{seconds:.2f}s of audio for {len(text)} characters of {lang} text "
                        f"(plausible: {low:.2f}s to {high:.2f}s)")
    if report["rms_dbfs"] is None or report["rms_dbfs"] < limits.min_rms_dbfs:
        problems.append(f"level {report['rms_dbfs']} dBFS is silence (need > {limits.min_rms_dbfs} dBFS)")
    if report["voiced_fraction"] < limits.min_voiced:
        problems.append(f"only {report['voiced_fraction']:.0%} of 50 ms windows carry sound "
                        f"(need {limits.min_voiced:.0%})")
    if report["clipped_fraction"] > limits.max_clipped:
        problems.append(f"{report['clipped_fraction']:.2%} of samples are clipped "
                        f"(at most {limits.max_clipped:.2%})")
    report["problems"] = problems
    return report


def parse_case(value: str) -> tuple[str, str]:
    lang, sep, text = value.partition(":")
    if not sep or lang not in CHARS_PER_SECOND or not text.strip():
        raise argparse.ArgumentTypeError(f"expected zh:TEXT or en:TEXT, got {value!r}")
    return lang, text.strip()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860", help="the web UI's base URL")
    parser.add_argument("--voice", required=True, help="a WAV to clone the voice from")
    parser.add_argument("--out-dir", required=True, help="where the WAVs and smoke-report.json go")
    parser.add_argument("--case", dest="cases", action="append", type=parse_case, metavar="LANG:TEXT",
                        help="a sentence to synthesise (zh or en); default: one of each")
    parser.add_argument("--api-name", default="gen_single")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one synthesis may take")
    parser.add_argument("--request-timeout", type=float, default=30.0, help="seconds for the other requests")
    parser.add_argument("--min-seconds", type=float, default=0.5)
    parser.add_argument("--min-ratio", type=float, default=0.3, help="shortest plausible length / expected")
    parser.add_argument("--max-ratio", type=float, default=3.5, help="longest plausible length / expected")
    parser.add_argument("--min-rms-dbfs", type=float, default=-40.0)
    parser.add_argument("--voiced-dbfs", type=float, default=-45.0, help="a 50 ms window above this is sound")
    parser.add_argument("--min-voiced", type=float, default=0.3, help="fraction of windows that carry sound")
    parser.add_argument("--max-clipped", type=float, default=0.01)
    args = parser.parse_args(argv)
    cases = args.cases or DEFAULT_CASES
    if not os.path.isfile(args.voice):
        parser.error(f"--voice {args.voice}: no such file")
    os.makedirs(args.out_dir, exist_ok=True)

    client = GradioClient(args.url, args.request_timeout)
    report = {"url": args.url, "api_name": args.api_name, "voice": args.voice, "cases": []}
    failed = False
    try:
        config = client.config()
        report["gradio_version"] = config.get("version")
        voice = client.upload(args.voice)
        for lang, text in cases:
            entry = {"lang": lang, "text": text}
            report["cases"].append(entry)
            started = time.monotonic()
            try:
                outputs = client.call(args.api_name, build_inputs(config, args.api_name, text, voice),
                                      args.timeout)
                entry["synthesis_seconds"] = round(time.monotonic() - started, 2)
                dest = os.path.join(args.out_dir, f"{lang}-{len(report['cases'])}.wav")
                client.download(output_file(outputs), dest)
                entry["file"] = os.path.basename(dest)
                entry.update(check_wav(dest, text, lang, args))
            except (SmokeFailure, urllib.error.URLError, OSError, ValueError, KeyError) as error:
                entry["problems"] = [str(error)]
            failed |= bool(entry["problems"])
            status = "FAILED: " + "; ".join(entry["problems"]) if entry["problems"] else "ok"
            print(f"smoke: [{lang}] {text!r}: {entry.get('seconds', '?')}s of audio, "
                  f"{entry.get('synthesis_seconds', '?')}s to synthesise, {status}", flush=True)
    except (SmokeFailure, urllib.error.URLError, OSError, ValueError, KeyError) as error:
        report["error"] = str(error)
        print(f"smoke: FAILED before synthesis: {error}", file=sys.stderr, flush=True)
        failed = True
    report["ok"] = not failed
    with open(os.path.join(args.out_dir, "smoke-report.json"), "w", encoding="utf-8") as out:
        json.dump(report, out, ensure_ascii=False, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
