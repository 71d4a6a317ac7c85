"""Command-line tools (``python scripts/NAME.py``); a package so that tools and tests import each other's parts
(``from scripts.reproduction import ...``) once the project is installed (``pip install -e .``)."""
