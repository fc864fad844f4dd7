"""Errors a user can act on.

Every error synthq raises on bad input is a `SynthqError` subclass whose message says what
was wrong and what to do. Bad *records* never raise: they become rejected rows (see
`synthq.tasks.core.records.REJECTED`). Errors are for bad configuration, missing inputs and
unusable files.
"""


class SynthqError(Exception):
    """Base class: the message is written for the person running synthq."""


class ConfigError(SynthqError):
    """The configuration file or an override is invalid."""


class InputError(SynthqError):
    """An input file or folder is missing, empty or unreadable."""


class SeedFileError(InputError):
    """The seed instruction file cannot be used at all (every line is bad, or it is empty)."""


class LakeError(SynthqError):
    """The lake is missing a dataset a stage needs, or a release already exists."""


class ModelError(SynthqError):
    """The model could not be found, prepared or loaded."""


class ServiceError(SynthqError):
    """The LLM service failed (timeouts, 5xx, 429, dropped connections) for some requests even
    after their retries: their shard stays unfinished, and a rerun retries exactly those
    requests (the LLM cache keeps every answer that came back)."""
