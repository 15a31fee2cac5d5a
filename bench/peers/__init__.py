"""Other Whisper engines, wrapped for the CPU benchmark: each module builds a zero-argument
transcribe function (model name, audio path, threads -> `() -> text`) on the same weights as ours."""
