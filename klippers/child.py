"""Entry point of the child job: ``python -m klippers.child`` (a contract with the image and
the task definitions). The job itself is :mod:`klippers.jobs.child`."""

import sys

from klippers.jobs.child import main

if __name__ == "__main__":
    sys.exit(main())
