"""Measurements and their data: scripts that print figures (``python -m bench.accuracy`` etc., run
from the repository's root) and the pieces the tests share with them (annotated data sets, the LiteRT
reference runner, the headless-browser helpers). Not part of the installed library."""
