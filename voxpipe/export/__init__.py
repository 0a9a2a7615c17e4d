"""Export of voxpipe models to other runtimes (ONNX: `voxpipe.export.onnx`)."""
