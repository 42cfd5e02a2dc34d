"""Entry point of the parent job: ``python -m klippers.parent`` (a contract with the image and
the task definitions). The job itself is :mod:`klippers.jobs.parent`."""

import sys

from klippers.jobs.parent import main

if __name__ == "__main__":
    sys.exit(main())
