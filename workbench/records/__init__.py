"""Adapters for real emergency-call records (read side only): loaders, the record-to-scenario conversion, maps.

Depends on ``workbench.domain`` only; nothing here writes recordings.
"""
