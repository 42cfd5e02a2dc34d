"""Entry point of the transcription shard job: ``python -m klippers.shard`` (a contract with
the image and the task definitions). The job itself is :mod:`klippers.jobs.shard`."""

import sys

from klippers.jobs.shard import main

if __name__ == "__main__":
    sys.exit(main())
