"""Klippers: the jobs and engines that turn a long video into shorts (built on klipmedia).

Layout (dependencies point down this list, never up):

- :mod:`klipmedia` (a separate package): media only.
- :mod:`klippers.contract`, :mod:`klippers.aws`, :mod:`klippers.statemachine`: pure
  definitions (warehouse layout, job environment and exit codes, AWS names and Fargate
  sizes, the Step Functions definition). ``infra/`` imports only these.
- :mod:`klippers.storage`: a local folder or an S3 bucket behind one interface.
- :mod:`klippers.asr`, :mod:`klippers.selection`: transcription and choosing moments.
- :mod:`klippers.jobs`: the parent and child jobs.
- Engines: :mod:`klippers.local` (with :mod:`klippers.gallery`) and :mod:`klippers.cloud`.
- :mod:`klippers.cli`: the ``klip`` command.
"""

__version__ = "0.1.0"
