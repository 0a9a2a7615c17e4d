"""Audio input and prompt preparation: reading sound files (`io`), ZipVoice's silence removal
(`silence`) and the prompt rules of the official pipelines (`prompt`).

Import the submodules directly (`from voxpipe.audio.io import load_audio`); this package
imports nothing itself so that `import voxpipe` stays light.
"""
