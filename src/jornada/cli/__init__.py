"""The ``jornada`` command line."""

from jornada.cli import audience_commands as _audience_commands  # noqa: F401 - registers its commands
from jornada.cli import channels_commands as _channels_commands  # noqa: F401 - same
from jornada.cli import flows_commands as _flows_commands  # noqa: F401 - registers its commands
from jornada.cli import keys_commands as _keys_commands  # noqa: F401 - same
from jornada.cli import predict_commands as _predict_commands  # noqa: F401 - same
from jornada.cli import scoring_commands as _scoring_commands  # noqa: F401 - same
from jornada.cli import sending_commands as _sending_commands  # noqa: F401 - same
from jornada.cli import templates_commands as _templates_commands  # noqa: F401 - same
from jornada.cli.commands import main

__all__ = ["main"]
