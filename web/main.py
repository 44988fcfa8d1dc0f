"""PyScript's script (index.html's <script type="py">). The page's Python is app.py and the modules
it imports: they come precompiled in python.zip (scripts/build_site.py), while PyScript compiles this
file from source on every load, so it stays this small."""
import js

js.window.faceBoot.marks.main_start = js.performance.now()
from app import main  # noqa: E402  (the start-up mark is taken before the imports)

await main()  # noqa: F704  (PyScript runs this file with top-level await)
