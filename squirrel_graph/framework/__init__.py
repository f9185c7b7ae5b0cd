"""squirrel-core compatible path ``squirrel.framework``."""
