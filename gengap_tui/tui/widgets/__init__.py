"""The lab's widgets, one thing each: the settings form, the curves, the lines of text (status bar,
patience meter, outcome) (docs/ARCHITECTURE.md, "The lab")."""

from .curves import Curves
from .lines import OutcomeLine, PatienceMeter, StatusBar, TextLine
from .settings import SettingsForm, field_id

__all__ = ["Curves", "OutcomeLine", "PatienceMeter", "SettingsForm", "StatusBar", "TextLine", "field_id"]
