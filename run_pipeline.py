#!/usr/bin/env python3
"""Run the memphis-incidents pipeline end to end (see `python run_pipeline.py --help`)."""
import sys
from pathlib import Path

from memphis_incidents.runner import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], Path(__file__).resolve().parent))
