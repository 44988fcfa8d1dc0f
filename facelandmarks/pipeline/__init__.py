"""Pure-Python pipeline logic shared by the CLI (CPython + onnxruntime) and the page (Pyodide +
onnxruntime-web). Nothing here may import numpy, PIL, onnxruntime or js: standard library only."""
