"""Regenerate the Vietnamese digit voices of the audio captcha (run by hand, not at run time).

    apt-get install espeak-ng && python idp/web/captcha_voices/make_voices.py

espeak-ng's Vietnamese voice speaks each digit; the result is converted to what the captcha
package's AudioCaptcha reads: one folder per character holding 8 kHz, 8-bit unsigned, mono WAV.
"""

from __future__ import annotations

import struct
import subprocess
import tempfile
import wave
from pathlib import Path

HERE = Path(__file__).parent
DIGITS = ["không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín"]
RATE = 8000


def convert(source: Path, target: Path) -> None:
    with wave.open(str(source)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        rate = w.getframerate()
        samples = struct.unpack(f"<{w.getnframes()}h", w.readframes(w.getnframes()))
    peak = max(1, max(abs(s) for s in samples))
    count = int(len(samples) * RATE / rate)
    out = bytearray()
    for i in range(count):
        # Average the source samples that fall into this output sample (a crude low-pass).
        lo, hi = int(i * rate / RATE), max(int(i * rate / RATE) + 1, int((i + 1) * rate / RATE))
        value = sum(samples[lo:hi]) / (hi - lo) / peak
        out.append(max(0, min(255, int(128 + value * 120))))
    target.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(target), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(RATE)
        w.writeframes(bytes(out))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for digit, word in enumerate(DIGITS):
            spoken = Path(tmp) / f"{digit}.wav"
            subprocess.run(["espeak-ng", "-v", "vi", "-s", "130", "-w", str(spoken), word], check=True)
            convert(spoken, HERE / str(digit) / "vi.wav")


if __name__ == "__main__":
    main()
