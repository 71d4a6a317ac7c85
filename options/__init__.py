"""Command-line options shared by train.py, test.py and the scripts."""
