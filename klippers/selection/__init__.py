"""Choosing the moments: candidate passages, scorers (embedded, LLM) and titles.

- :mod:`~klippers.selection.highlights`: candidates on sentence ends, the embedded scorer,
  titles and the final picks.
- :mod:`~klippers.selection.llm`: an optional scorer backed by an LLM endpoint.
"""
