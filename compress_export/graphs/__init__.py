"""ONNX graphs as files and as structures: reading and writing models of any size (external data), sessions of
in-memory models, and which nodes a recipe quantizes and which tensors need ranges."""
