"""PyScript's script (index.html's <script type="py">). The page's Python is app.py and the modules
it imports: they come precompiled in python.zip (scripts/build_site.py), while PyScript compiles this
file from source on every load, so it stays this small."""
import js

js.window.faceBoot.marks.main_start = js.performance.now()
import frozen_pipeline  # noqa: E402  (the start-up mark is taken before the imports)

if stale := frozen_pipeline.check():   # the snapshot's pipeline is not python.zip's: use python.zip's
    js.console.warn(frozen_pipeline.describe(stale))
from app import main  # noqa: E402

await main()  # noqa: F704  (PyScript runs this file with top-level await)
