"""Error types. Every error a user can cause is a `VoxpipeError` with a message that names the
problem (file, key, value, expected); the CLI prints it without a traceback."""


class VoxpipeError(Exception):
    """Base class of the errors voxpipe raises on bad input."""


class ConfigError(VoxpipeError):
    """A pipeline file, override or component parameter is invalid (CLI exit code 2)."""


class RegistryError(ConfigError):
    """An unknown component name, a duplicate registration, or a plugin that failed to load."""


class CompatibilityError(ConfigError):
    """Two components of a pipeline disagree (sample rate, hop, feature dim, vocabulary)."""


class WeightsError(VoxpipeError):
    """A weight file is missing, unreadable, or does not match the model it is loaded into."""


class AudioError(VoxpipeError):
    """An audio file is missing, unreadable, empty, too short or silent."""


class TextError(VoxpipeError):
    """Text cannot be tokenized (e.g. out-of-vocabulary characters in strict mode)."""


class VoiceFileError(VoxpipeError):
    """A voice file is corrupted, hostile or of an unknown version."""
