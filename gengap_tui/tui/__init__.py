"""The Textual lab (the only part of gengap-tui that imports Textual)."""
