"""The two providers' SDKs behind one adapter shape (``base.py``): preparing and sending requests, streaming,
classifying SDK failures, reading rate-limit headers, and knowing whether a request has left the process.

Nothing is re-exported here: importing ``pulsegate.core.providers`` must not import either SDK (``from pulsegate import
AIClient`` stays within its import budget); import the module you need."""
