"""The four built-in IPT adaptations, each a pluggy plugin registered by entry point."""
