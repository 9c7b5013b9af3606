"""The marker language: ``parse_marker`` / ``analyze_marker`` and the typed AST."""

from cascadec.marker.ast import KINDS, Kind, Marker, MarkerTier, format_temperature
from cascadec.marker.parser import analyze_marker, canonical, marker_parser, parse_marker, spellable

__all__ = [
    "KINDS",
    "Kind",
    "Marker",
    "MarkerTier",
    "analyze_marker",
    "canonical",
    "format_temperature",
    "marker_parser",
    "parse_marker",
    "spellable",
]
