"""The lab's widgets, one thing each: the settings form, the curves, the patience meter, the
status bar (docs/ARCHITECTURE.md, "The lab")."""

from .curves import Curves
from .patience import PatienceMeter
from .settings import SettingsForm, field_id
from .status import StatusBar

__all__ = ["Curves", "PatienceMeter", "SettingsForm", "StatusBar", "field_id"]
