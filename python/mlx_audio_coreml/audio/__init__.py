"""Audio in and out: decode any file, resample, validate; write wav/flac/mp3/raw PCM (`write.py`)."""
