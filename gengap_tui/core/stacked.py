"""Where the stacked models lived before `core/models/` (kept so that older imports still work):
`models.grouped.GroupedMLP`, `models.stacked1d.StackedCNN1D`, `models.stacked2d.Stacked2D`."""

from .models import GroupedMLP, Stacked2D, StackedCNN1D, mlp_cost, plan_buckets  # noqa: F401
