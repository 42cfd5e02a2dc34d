"""Speech to text: ASR backends, the transcript model, subtitle files, loudness.

- :mod:`~klippers.asr.transcribe`: faster-whisper / whisper-timestamped backends -> words.
- :mod:`~klippers.asr.transcript`: words and sentences, and their JSON form.
- :mod:`~klippers.asr.subtitles`: ``original.srt`` / ``.txt`` / ``.words.json`` writers.
- :mod:`~klippers.asr.loudness`: loudness per second, for selection.
"""
