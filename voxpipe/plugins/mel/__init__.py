"""Built-in plugin `mel`: the Vocos log-mel feature extractor (`features` kind, `vocos-mel`)."""

from voxpipe.registry import hookimpl


@hookimpl
def register_components(register):
    from voxpipe.plugins.mel.vocos_mel import VocosMelFeatures

    register(VocosMelFeatures)
