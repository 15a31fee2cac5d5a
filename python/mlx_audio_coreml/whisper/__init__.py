"""Whisper speech-to-text on MLX: audio front end, model, weights formats, tokenizer, decoding.

Import the submodules you need (`whisper.audio`, `whisper.mel`, `whisper.model`, `whisper.loading`,
`whisper.tokenizer` ...); this package itself imports nothing heavy.
"""
