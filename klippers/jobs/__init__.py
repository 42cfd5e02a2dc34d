"""The two jobs of the pipeline and what they share.

- :mod:`~klippers.jobs.parent`: transcribe, select, cut segments, write the manifest.
- :mod:`~klippers.jobs.child`: render segment N as a vertical short.
- :mod:`~klippers.jobs.segments`: cutting the segments and their SRT / words files.
- :mod:`~klippers.jobs.runner`: environment, logging, exit codes and scratch space.

The engines run them: in processes (:mod:`klippers.local`) or as Fargate tasks
(``python -m klippers.parent`` / ``python -m klippers.child``).
"""
