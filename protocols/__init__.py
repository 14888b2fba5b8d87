"""Protocol definitions shipped with iptflow (TOML data files; nothing here is code)."""
