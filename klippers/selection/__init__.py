"""Choosing the moments: candidate passages, scorers (embedded, LLM) and titles.

- :mod:`~klippers.selection.highlights`: :func:`select_highlights`, the pipeline and its picks.
- :mod:`~klippers.selection.units`: sentences (pauses end run-on ones) and candidate passages.
- :mod:`~klippers.selection.signals`: the embedded scorer (audience-reaction cues first).
- :mod:`~klippers.selection.embeddings`: sentence embeddings for its anecdote cue (optional).
- :mod:`~klippers.selection.titles`: headline titles from the passage's own words.
- :mod:`~klippers.selection.llm`: an optional scorer backed by an LLM endpoint.
- :mod:`~klippers.selection.config`: the scorer by name (``embedded`` or ``llm``).
- :mod:`~klippers.selection.lexicon`: word lists shared by the signals and the titles.
"""
