#!/usr/bin/env python3
"""A stand-in for IndexTTS2's webui.py on real Gradio, for smoke.py's tests.

Not IndexTTS2: no model, no GPU. It runs the Gradio version upstream pins
and declares gen_single with the same inputs in the same order and with the
same component keys and defaults as upstream's webui.py (v2.0.0), so
smoke.py's use of Gradio's HTTP API (config, upload, call, event stream,
file download) is exercised against the real protocol. Its "speech" is a
syllable-paced tone whose length follows the text, like real speech.

What it returns is chosen per call by the first word of --mode-file:
speech, silence, short, clipped, error or hang.
"""
import argparse
import math
import os
import tempfile
import time
import wave

import gradio as gr

EMO_CHOICES = ["Same as the voice reference", "Use an emotion reference audio", "Use emotion vectors"]
RATE = 22050
CHARS_PER_SECOND = {"zh": 4.0, "en": 14.0}


def synthesise(text: str, mode: str) -> str:
    lang = "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in text) else "en"
    seconds = len("".join(text.split())) / CHARS_PER_SECOND[lang]
    if mode == "short":
        seconds = 0.2
    samples = bytearray()
    for n in range(int(seconds * RATE)):
        t = n / RATE
        syllable = max(0.0, math.sin(math.pi * ((t * 4.0) % 1.0)))     # four syllables a second
        if mode == "silence":
            value = 0.0
        elif mode == "clipped":
            value = 1.0 if (n // 7) % 2 else -1.0
        else:
            value = 0.35 * syllable * math.sin(2 * math.pi * 180 * t) + 0.1 * math.sin(2 * math.pi * 360 * t)
        samples += int(max(-1.0, min(1.0, value)) * 32767).to_bytes(2, "little", signed=True)
    handle, path = tempfile.mkstemp(prefix="spk_", suffix=".wav")
    os.close(handle)
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(bytes(samples))
    return path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode-file", required=True)
    parser.add_argument("--calls-file", required=True, help="each call's inputs are appended here")
    args = parser.parse_args()

    def gen_single(emo_control_method, prompt, text, emo_ref_path, emo_weight,
                   vec1, vec2, vec3, vec4, vec5, vec6, vec7, vec8, emo_text, emo_random,
                   max_text_tokens_per_segment=120, *advanced):
        with open(args.calls_file, "a", encoding="utf-8") as calls:
            calls.write(repr([emo_control_method, prompt, text, emo_ref_path, emo_weight, emo_text,
                              emo_random, max_text_tokens_per_segment, *advanced]) + "\n")
        with open(args.mode_file, encoding="utf-8") as handle:
            mode = handle.read().split()[0]
        if not prompt or not os.path.isfile(prompt):
            raise gr.Error("no voice prompt")
        if mode == "error":
            raise gr.Error("CUDA error: out of memory (stand-in)")
        if mode == "hang":
            time.sleep(3600)
        return gr.update(value=synthesise(text, mode), visible=True)

    with gr.Blocks(title="IndexTTS stand-in") as demo:
        prompt_audio = gr.Audio(key="prompt_audio", sources=["upload"], type="filepath")
        input_text_single = gr.TextArea(key="input_text_single")
        gen_button = gr.Button("generate", key="gen_button")
        output_audio = gr.Audio(visible=True, key="output_audio")
        emo_control_method = gr.Radio(choices=EMO_CHOICES, type="index", value=EMO_CHOICES[0])
        emo_upload = gr.Audio(type="filepath")
        emo_random = gr.Checkbox(value=False)
        vectors = [gr.Slider(minimum=0.0, maximum=1.0, value=0.0, step=0.05) for _ in range(8)]
        emo_text = gr.Textbox(value="")
        emo_weight = gr.Slider(minimum=0.0, maximum=1.0, value=0.65, step=0.01)
        segment_tokens = gr.Slider(value=120, minimum=20, maximum=600, step=2, key="max_text_tokens_per_segment")
        advanced = [gr.Checkbox(value=True), gr.Slider(minimum=0.0, maximum=1.0, value=0.8, step=0.01),
                    gr.Slider(minimum=0, maximum=100, value=30, step=1),
                    gr.Slider(minimum=0.1, maximum=2.0, value=0.8, step=0.1), gr.Number(value=0.0),
                    gr.Slider(value=3, minimum=1, maximum=10, step=1), gr.Number(value=10.0),
                    gr.Slider(value=1500, minimum=50, maximum=1815, step=10, key="max_mel_tokens")]
        gen_button.click(gen_single,
                         inputs=[emo_control_method, prompt_audio, input_text_single, emo_upload, emo_weight,
                                 *vectors, emo_text, emo_random, segment_tokens, *advanced],
                         outputs=[output_audio])
    demo.queue(20)
    demo.launch(server_name="127.0.0.1", server_port=args.port)


if __name__ == "__main__":
    main()
