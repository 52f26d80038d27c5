"""Processes in the dev container: which pod (``pods``), commands nhdev can stop completely
(``process.RemoteProcess``), interactive shells (``terminal``) and hot-reload coalescing (``reload``)."""
