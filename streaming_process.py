#!/usr/bin/env python3
"""The seed's entry point, kept working: ``python streaming_process.py topic | ingest | consume | stream``.

Same code as the ``clogs`` command (app/cli.py).
"""
import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
