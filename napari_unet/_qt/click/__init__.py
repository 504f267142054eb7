"""The Click to segment dock widget, the click tool behind it, and the objects it works on."""
