"""Offline side: PyTorch modules → verified ONNX graphs + manifest in the site's models folder."""
