"""The Segment dock widget and its advanced settings."""
