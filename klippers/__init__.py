"""Klippers: the jobs and engines that turn a long video into shorts (built on klipmedia)."""

__version__ = "0.1.0"
